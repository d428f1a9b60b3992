import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { RoundStartGrid, type GridEntry } from '../../lib/verifier/round-start-grid.js';

/** Node's pending timers, as `process.getActiveResourcesInfo` lists them. */
function pendingTimers(): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
}

describe('RoundStartGrid', () => {
  it('starts every round due inside one slot from one callback, at the slot end', async () => {
    const grid = new RoundStartGrid(50, () => 1_000_010);
    const seen: string[] = [];
    for (const delay of [0, 5, 20, 40]) {
      grid.at(delay, () => {
        seen.push(`round ${delay}`);
        // Runs only after the callback that started the slot's rounds has returned.
        queueMicrotask(() => seen.push(`after ${delay}`));
      });
    }
    await sleep(120);
    expect(seen).to.deep.equal(['round 0', 'round 5', 'round 20', 'round 40', 'after 0', 'after 5', 'after 20', 'after 40']);
  });

  it('starts a round no earlier than asked (to the timer precision) and about one slot later at most', async () => {
    const grid = new RoundStartGrid(20);
    const asked = performance.now();
    // Each against a plain timer asked for one slot after the delay, the latest the round may start: a CI
    // host that stalls this process makes both late alike (a timer asked for the delay itself could fire
    // before a stall the round's then waits out), so "one slot later at most" counts from when that timer
    // could fire, not from the clock.
    const started = await Promise.all(
      [0, 7, 23, 45].map(async (delay) => {
        const slotLater = new Promise<number>((resolve) => setTimeout(() => resolve(performance.now() - asked), delay + 20));
        const round = new Promise<number>((resolve) => grid.at(delay, () => resolve(performance.now() - asked)));
        return [delay, await round, await slotLater] as const;
      }),
    );
    for (const [delay, after, slotLaterAfter] of started) {
      expect(after, `asked ${delay} ms`).to.be.at.least(delay - 1).and.below(slotLaterAfter + 40);
    }
  });

  it('counts on the monotonic clock: a step of the system clock moves no round', async () => {
    const grid = new RoundStartGrid(20);
    const realNow = Date.now;
    const later = grid.at(1_000, () => undefined);
    const asked = performance.now();
    let startedAfter = -1;
    try {
      // Stepped forward by 970 ms, a clock-based grid would put this round in the slot 1 s away.
      Date.now = () => realNow() + 970;
      grid.at(30, () => {
        startedAfter = performance.now() - asked;
      });
    } finally {
      Date.now = realNow;
    }
    await sleep(120);
    grid.cancel(later);
    expect(startedAfter).to.be.at.least(29).and.below(100);
  });

  it('does not run a cancelled round, runs the others of its slot, and drops the timer of a slot left empty', async () => {
    const grid = new RoundStartGrid(20);
    const seen: string[] = [];
    const before = pendingTimers();
    const first = grid.at(5, () => seen.push('first'));
    grid.at(5, () => seen.push('second'));
    grid.cancel(first);
    grid.cancel(first);
    grid.cancel(undefined);
    const alone = grid.at(500, () => seen.push('alone'));
    expect(pendingTimers()).to.equal(before + 2);
    grid.cancel(alone);
    expect(pendingTimers()).to.equal(before + 1);
    await sleep(60);
    expect(seen).to.deep.equal(['second']);
  });

  it('does not run a round cancelled by another round of the same slot', async () => {
    const grid = new RoundStartGrid(20, () => 3_000);
    const seen: string[] = [];
    const victim: { entry?: GridEntry } = {};
    grid.at(0, () => {
      seen.push('canceller');
      grid.cancel(victim.entry);
    });
    victim.entry = grid.at(0, () => seen.push('victim'));
    grid.at(0, () => seen.push('third'));
    await sleep(40);
    expect(seen).to.deep.equal(['canceller', 'third']);
  });

  it('runs a round added for the slot being started once, after the slot', async () => {
    const grid = new RoundStartGrid(20, () => 2_000);
    const seen: string[] = [];
    grid.at(0, () => {
      seen.push('outer');
      grid.at(0, () => seen.push('inner'));
    });
    await sleep(60);
    expect(seen).to.deep.equal(['outer', 'inner']);
  });

  it('starts the rest of a slot when one round throws, and rethrows it uncaught', async () => {
    const grid = new RoundStartGrid(20, () => 4_000);
    const seen: string[] = [];
    const mochaHandlers = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const uncaught = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
    try {
      grid.at(0, () => {
        throw new Error('round set-up failed');
      });
      grid.at(0, () => seen.push('sibling'));
      const error = await uncaught;
      expect((error as Error).message).to.equal('round set-up failed');
    } finally {
      for (const handler of mochaHandlers) process.on('uncaughtException', handler);
    }
    expect(seen).to.deep.equal(['sibling']);
  });

  it('drops every waiting round and its timer on close', async () => {
    const grid = new RoundStartGrid(20);
    const before = pendingTimers();
    let ran = 0;
    for (const delay of [0, 30, 2_000]) {
      grid.at(delay, () => {
        ran += 1;
      });
    }
    grid.close();
    expect(pendingTimers()).to.equal(before);
    await sleep(60);
    expect(ran).to.equal(0);
  });

  it("keeps a delay past Node's timer limit waiting instead of running it at once", async () => {
    const grid = new RoundStartGrid(20);
    let ran = false;
    const entry = grid.at(2 ** 40, () => {
      ran = true;
    });
    await sleep(50);
    expect(ran).to.equal(false);
    expect(entry.slot * 20).to.be.below(performance.now() + 2 ** 31);
    grid.cancel(entry);
  });
});
