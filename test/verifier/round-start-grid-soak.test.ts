import { expect } from 'chai';
import { pullRoundGrid, pullRoundSlackMs } from '../../lib/verifier/pull-round-grid.js';
import { slotCapacity } from '../../lib/verifier/round-start-grid.js';
import { simulateGridSoak, type GridSoakOptions } from './helpers/grid-soak-simulation.js';

const AGENTS = 1_000;
const INTERVAL_MS = 2_000;
const SLOT_MS = 20;
const SLACK_MS = pullRoundSlackMs(INTERVAL_MS, SLOT_MS);

/** The grid `PullScheduler` builds (the same factory) and asks, on the simulation's clock. */
const schedulerGrid: Pick<GridSoakOptions, 'grid' | 'ask'> = {
  grid: (now, started) => pullRoundGrid({ slotMs: SLOT_MS, intervalMs: INTERVAL_MS, agents: () => AGENTS, started, now }).grid,
  ask: (grid, delayMs, run) => grid.at(delayMs, run, SLACK_MS),
};

const uniformMs = (from: number, to: number) => (random: () => number) => from + random() * (to - from);

/**
 * Ten simulated minutes a seed (300 intervals of 2 s), a few tenths of a second of real time each. Without the cap, rounds shorter than a slot never leave the slot a stall put
 * them in: the first case's largest slot grew from 19 rounds to 94 and stayed there (docs/fleet.md,
 * "Thirteenth pass"). Each case runs over several seeds, the worst seen among 1–12 included.
 */
describe('RoundStartGrid over long runs (simulated clock)', function () {
  this.timeout(30_000);
  const capacity = slotCapacity(AGENTS, INTERVAL_MS, SLOT_MS);

  for (const seed of [1, 7, 8]) {
    it(`keeps rounds shorter than a slot within the capacity through 200 ms stalls every 10 s (seed ${seed})`, () => {
      const result = simulateGridSoak({
        ...schedulerGrid,
        agents: AGENTS,
        intervalMs: INTERVAL_MS,
        intervals: 300,
        durationMs: uniformMs(2, 15),
        stallEveryMs: 10_000,
        stallMs: 200,
        seed,
      });
      expect(capacity).to.equal(20);
      expect(Math.max(...result.maxPerSlot)).to.be.at.most(capacity);
    });
  }

  // Seeds 6 and 8 came closest to the envelope among 1–12 (62 and 40 rounds against 62 and 41).
  for (const seed of [6, 8, 11]) {
    it(`spreads a 500 ms stall over the slots within the slack, its pile halving each interval, within the capacity from the 4th interval on (seed ${seed})`, () => {
      const stallEveryMs = 30_000;
      const stallMs = 500;
      const result = simulateGridSoak({
        ...schedulerGrid,
        agents: AGENTS,
        intervalMs: INTERVAL_MS,
        intervals: 300,
        durationMs: uniformMs(1, 40),
        stallEveryMs,
        stallMs,
        seed,
      });
      // The stall holds back a quarter of the fleet (250 rounds): more than the six slots within the slack
      // take at 20 each, so for two or three intervals they share them over the capacity.
      const piled = Math.ceil((AGENTS * stallMs) / INTERVAL_MS / (SLACK_MS / SLOT_MS + 1));
      const intervalsPerStall = stallEveryMs / INTERVAL_MS;
      result.maxPerSlot.forEach((rounds, interval) => {
        const sinceStall = interval < intervalsPerStall ? Infinity : interval % intervalsPerStall;
        const envelope = sinceStall >= 1 && sinceStall <= 3 ? capacity + piled / 2 ** (sinceStall - 1) : capacity;
        expect(rounds, `interval ${interval}, ${sinceStall} after a stall`).to.be.at.most(envelope);
      });
    });
  }

  for (const seed of [3, 5, 9]) {
    it(`moves a round past its asked slot only when that slot is full, to the first slot with room within the slack (seed ${seed})`, () => {
      const placed = new Map<number, number>();
      const wrongMoves: string[] = [];
      let moves = 0;
      const result = simulateGridSoak({
        ...schedulerGrid,
        // Every ask is for a slot not yet fired, so the rounds placed in it are its size.
        ask: (grid, delayMs, run, now) => {
          const asked = Math.ceil((now + delayMs) / SLOT_MS);
          const askedSize = placed.get(asked) ?? 0;
          const chosen = grid.at(delayMs, run, SLACK_MS).slot;
          // The rule: the first slot from the asked one with room, within the slack; none: the least full.
          const reach = Array.from({ length: Math.floor(SLACK_MS / SLOT_MS) + 1 }, (_, i) => asked + i);
          const expected = reach.find((slot) => (placed.get(slot) ?? 0) < capacity) ?? reach.reduce((least, slot) => ((placed.get(slot) ?? 0) < (placed.get(least) ?? 0) ? slot : least));
          placed.set(chosen, (placed.get(chosen) ?? 0) + 1);
          if (chosen !== asked) moves += 1;
          if (chosen !== expected) {
            wrongMoves.push(`slot ${asked} holding ${askedSize} went to ${chosen}, not ${expected}`);
          }
        },
        agents: AGENTS,
        intervalMs: INTERVAL_MS,
        intervals: 300,
        durationMs: uniformMs(2, 15),
        stallEveryMs: Infinity,
        stallMs: 0,
        seed,
      });
      expect(wrongMoves.slice(0, 5)).to.deep.equal([]);
      // Seed 5's enrolment overfills a slot once: the rule is then exercised, not only the no-move case.
      if (seed === 5) expect(moves).to.be.greaterThan(0);
      expect(result.maxStartDelayMs).to.be.at.most(SLOT_MS + SLACK_MS);
      expect(Math.max(...result.maxPerSlot)).to.be.at.most(capacity);
    });
  }
});
