import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { RoundStartGrid } from '../../lib/verifier/round-start-grid.js';

describe('RoundStartGrid', () => {
  it('starts every round due inside one slot from one callback, at the slot end', async () => {
    const now = 1_000_010;
    const grid = new RoundStartGrid(50, () => now);
    const seen: string[] = [];
    const entries = [0, 5, 20, 40].map((delay) =>
      grid.at(delay, () => {
        seen.push(`round ${delay}`);
        // Runs only after the callback that started the slot's rounds has returned.
        queueMicrotask(() => seen.push(`after ${delay}`));
      }),
    );
    expect(entries.map((entry) => grid.dueAt(entry))).to.deep.equal([1_000_050, 1_000_050, 1_000_050, 1_000_050]);
    await sleep(120);
    expect(seen).to.deep.equal(['round 0', 'round 5', 'round 20', 'round 40', 'after 0', 'after 5', 'after 20', 'after 40']);
  });

  it('never starts a round before it is due, and at most one slot after', () => {
    const grid = new RoundStartGrid(20, () => 1_007);
    for (const delay of [0, 1, 13, 19, 20, 2000]) {
      const entry = grid.at(delay, () => undefined);
      expect(grid.dueAt(entry)).to.be.at.least(1_007 + delay).and.below(1_007 + delay + 20);
      grid.cancel(entry);
    }
  });

  it('does not run a cancelled round, and runs the others of its slot', async () => {
    const grid = new RoundStartGrid(20);
    const seen: string[] = [];
    const first = grid.at(5, () => seen.push('first'));
    grid.at(5, () => seen.push('second'));
    grid.cancel(first);
    grid.cancel(first);
    grid.cancel(undefined);
    await sleep(60);
    expect(seen).to.deep.equal(['second']);
  });

  it('runs a round added for the slot being started, in a slot of its own', async () => {
    let now = 2_000;
    const grid = new RoundStartGrid(20, () => now);
    const seen: string[] = [];
    grid.at(0, () => {
      seen.push('outer');
      now = 2_000;
      grid.at(0, () => seen.push('inner'));
    });
    await sleep(60);
    expect(seen).to.deep.equal(['outer', 'inner']);
  });

  it("keeps a delay past Node's timer limit waiting instead of running it at once", async () => {
    const grid = new RoundStartGrid(20);
    let ran = false;
    const entry = grid.at(2 ** 40, () => {
      ran = true;
    });
    await sleep(50);
    expect(ran).to.equal(false);
    expect(grid.dueAt(entry)).to.be.below(Date.now() + 2 ** 31);
    grid.cancel(entry);
  });
});
