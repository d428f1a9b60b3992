import { expect } from 'chai';
import { RoundStartGrid, SLACK_SHARE_OF_INTERVAL, slotCapacity } from '../../lib/verifier/round-start-grid.js';
import { simulateGridSoak, type GridSoakOptions } from './helpers/grid-soak-simulation.js';

const AGENTS = 1_000;
const INTERVAL_MS = 2_000;
const SLOT_MS = 20;
const SLACK_MS = SLACK_SHARE_OF_INTERVAL * INTERVAL_MS;

/** The grid as `PullScheduler` builds it and asks it, on the simulation's clock. */
const schedulerGrid: Pick<GridSoakOptions, 'grid' | 'ask'> = {
  grid: (now, started) => new RoundStartGrid(SLOT_MS, now, { started, capacity: () => slotCapacity(AGENTS, INTERVAL_MS, SLOT_MS) }),
  ask: (grid, delayMs, run) => grid.at(delayMs, run, SLACK_MS),
};

const uniformMs = (from: number, to: number) => (random: () => number) => from + random() * (to - from);

/**
 * Twenty simulated minutes each (600 intervals of 2 s), in about two seconds of real time. Without the
 * cap, rounds shorter than a slot never leave the slot a stall put them in: the first case's largest
 * slot grew from 19 rounds to 94 and stayed there (docs/fleet.md, "Thirteenth pass").
 */
describe('RoundStartGrid over long runs (simulated clock)', function () {
  this.timeout(30_000);
  const capacity = slotCapacity(AGENTS, INTERVAL_MS, SLOT_MS);

  it('keeps rounds shorter than a slot within the capacity through 200 ms stalls every 10 s', () => {
    const result = simulateGridSoak({
      ...schedulerGrid,
      agents: AGENTS,
      intervalMs: INTERVAL_MS,
      slotMs: SLOT_MS,
      intervals: 600,
      durationMs: uniformMs(2, 15),
      stallEveryMs: 10_000,
      stallMs: 200,
      seed: 7,
    });
    expect(capacity).to.equal(20);
    expect(Math.max(...result.maxPerSlot)).to.be.at.most(capacity);
  });

  it('spreads a 500 ms stall over the slots within the slack, and is back within the capacity two intervals later', () => {
    const stallEveryMs = 30_000;
    const stallMs = 500;
    const result = simulateGridSoak({
      ...schedulerGrid,
      agents: AGENTS,
      intervalMs: INTERVAL_MS,
      slotMs: SLOT_MS,
      intervals: 600,
      durationMs: uniformMs(1, 40),
      stallEveryMs,
      stallMs,
      seed: 11,
    });
    // The stall holds back a quarter of the fleet (250 rounds): more than the six slots within the slack
    // take at 20 each, so for an interval or two they share them over the capacity.
    const piled = Math.ceil((AGENTS * stallMs) / INTERVAL_MS / (SLACK_MS / SLOT_MS + 1));
    expect(Math.max(...result.maxPerSlot)).to.be.at.most(capacity + piled);
    const justAfterStall = (interval: number): boolean => [1, 2].some((back) => interval > back && ((interval - back) * INTERVAL_MS) % stallEveryMs === 0);
    const settled = result.maxPerSlot.filter((_, interval) => !justAfterStall(interval));
    expect(Math.max(...settled)).to.be.at.most(capacity);
  });

  it('moves no round past its own slot when nothing stalls (every slot has room)', () => {
    const result = simulateGridSoak({
      ...schedulerGrid,
      agents: AGENTS,
      intervalMs: INTERVAL_MS,
      slotMs: SLOT_MS,
      intervals: 300,
      durationMs: uniformMs(2, 15),
      stallEveryMs: Infinity,
      stallMs: 0,
      seed: 3,
    });
    expect(result.maxStartDelayMs).to.be.at.most(SLOT_MS);
    expect(Math.max(...result.maxPerSlot)).to.be.at.most(capacity);
  });
});
