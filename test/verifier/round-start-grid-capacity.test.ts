import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { MAX_REACH_SLOTS, RoundStartGrid, slotCapacity } from '../../lib/verifier/round-start-grid.js';

/** The slot index of each of `count` rounds asked `delayMs` from now with `slackMs`. */
function slotsOf(grid: RoundStartGrid, count: number, delayMs: number, slackMs: number): number[] {
  return Array.from({ length: count }, () => grid.at(delayMs, () => undefined, slackMs).slot);
}

describe('RoundStartGrid capacity and slack', () => {
  it('gives a slot twice the fair share of its agents, at least one, and no limit without an interval', () => {
    expect(slotCapacity(1_000, 2_000, 20)).to.equal(20);
    expect(slotCapacity(3_000, 2_000, 20)).to.equal(60);
    expect(slotCapacity(1_001, 2_000, 20)).to.equal(22);
    expect(slotCapacity(1, 60_000, 20)).to.equal(2);
    expect(slotCapacity(0, 2_000, 20)).to.equal(1);
    expect(slotCapacity(5, 0, 20)).to.equal(Infinity);
  });

  it('passes a round from a full slot to the next slot with room, and no further than the slack', () => {
    // now 1,000 ms: a delay of 10 ms asks for slot 51 (ends at 1,020 ms).
    const grid = new RoundStartGrid(20, () => 1_000, { capacity: () => 2 });
    try {
      expect(slotsOf(grid, 7, 10, 40)).to.deep.equal([51, 51, 52, 52, 53, 53, 51]);
      // Slots 52 and 53 are full too, and 54 is past the slack: the earliest of the least full takes it.
      expect(slotsOf(grid, 2, 10, 40)).to.deep.equal([52, 53]);
    } finally {
      grid.close();
    }
  });

  it('keeps a round asked without slack in its slot, full or not', () => {
    const grid = new RoundStartGrid(20, () => 1_000, { capacity: () => 1 });
    try {
      expect(slotsOf(grid, 3, 10, 0)).to.deep.equal([51, 51, 51]);
    } finally {
      grid.close();
    }
  });

  it('makes room again in a slot whose round was cancelled', () => {
    const grid = new RoundStartGrid(20, () => 1_000, { capacity: () => 1 });
    try {
      const first = grid.at(10, () => undefined, 100);
      grid.cancel(first);
      expect(grid.at(10, () => undefined, 100).slot).to.equal(first.slot);
    } finally {
      grid.close();
    }
  });

  it('shares a 5,000-agent burst asked for one slot (a mass restart) over the capped reach, without a long scan', () => {
    // One hour's interval: a slack of 5 % would reach 9,000 slots, two rounds a slot.
    const intervalMs = 3_600_000;
    const grid = new RoundStartGrid(20, () => 1_000, { capacity: () => slotCapacity(5_000, intervalMs, 20) });
    try {
      const started = performance.now();
      const slots = slotsOf(grid, 5_000, 0, 0.05 * intervalMs);
      const elapsedMs = performance.now() - started;
      expect(Math.max(...slots)).to.equal(50 + MAX_REACH_SLOTS);
      // Shared over every slot of the reach, none holding more than its share of the pile.
      const perSlot = new Map<number, number>();
      for (const slot of slots) perSlot.set(slot, (perSlot.get(slot) ?? 0) + 1);
      expect(perSlot.size).to.equal(MAX_REACH_SLOTS + 1);
      expect(Math.max(...perSlot.values())).to.be.at.most(Math.ceil(5_000 / (MAX_REACH_SLOTS + 1)));
      // The reach above is what keeps the scan short. The time is a loose guard only: on the shared
      // development host (load 6) the burst took 65–130 ms capped, 240–310 ms uncapped; 5 s allows for a
      // CI host that stalls this process for ~3 s and still stops a scan gone quadratic.
      expect(elapsedMs).to.be.below(5_000);
    } finally {
      grid.close();
    }
  });
});
