import { mock } from 'node:test';
import { RoundStartGrid } from '../../../lib/verifier/round-start-grid.js';

/** The simulation's fleet, clock and grid. */
export interface GridSoakOptions {
  readonly agents: number;
  readonly intervalMs: number;
  /** Simulated length, in intervals. */
  readonly intervals: number;
  /** A round's duration in ms, from `random()` in [0, 1). */
  readonly durationMs: (random: () => number) => number;
  readonly stallEveryMs: number;
  readonly stallMs: number;
  /** The grid under test, built on the simulation's clock and told each slot's round count. */
  readonly grid: (now: () => number, started: (rounds: number) => void) => RoundStartGrid;
  /** How each round asks for its next start at `now` (the scheduler's `at` call); default: `grid.at(delayMs, run)`. */
  readonly ask?: (grid: RoundStartGrid, delayMs: number, run: () => void, now: number) => void;
  readonly seed: number;
}

/** The largest number of rounds one slot started, per interval of simulated time; and the largest start delay (ms). */
export interface GridSoakResult {
  readonly maxPerSlot: readonly number[];
  readonly maxStartDelayMs: number;
}

/**
 * The pull loop's timing rule over simulated hours, on the real `RoundStartGrid` and Node's mocked
 * timers (`node:test` MockTimers), so nothing waits: each agent's round starts when its slot fires, ends
 * a random duration later, and asks the grid for the next round `intervalMs` after that end — as
 * `PullScheduler.schedule` does from the round's decision. Every `stallEveryMs` the event loop stalls for
 * `stallMs` (a long GC or a slow batch): nothing fires during it, and everything due in it fires at its end
 * with the clock at the end, as Node's timers do.
 */
export function simulateGridSoak(options: GridSoakOptions): GridSoakResult {
  const random = mulberry32(options.seed);
  const maxPerSlot = new Array<number>(options.intervals).fill(0);
  let now = 0;
  let maxStartDelayMs = 0;
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const grid = options.grid(
      () => now,
      (rounds) => {
        const interval = Math.min(options.intervals - 1, Math.floor(now / options.intervalMs));
        maxPerSlot[interval] = Math.max(maxPerSlot[interval] ?? 0, rounds);
      },
    );
    const ask = options.ask ?? ((g, delayMs, run) => g.at(delayMs, run));
    const startRound = (dueAt: number): void => {
      maxStartDelayMs = Math.max(maxStartDelayMs, now - dueAt);
      setTimeout(() => {
        const due = now + options.intervalMs;
        ask(grid, options.intervalMs, () => startRound(due), now);
      }, options.durationMs(random));
    };
    // Enrolled one after another over the first interval, as a fleet's adoption spreads them.
    for (let i = 0; i < options.agents; i += 1) {
      const delay = Math.floor(random() * options.intervalMs);
      ask(grid, delay, () => startRound(delay), now);
    }
    const end = options.intervals * options.intervalMs;
    while (now < end) {
      if (now > 0 && now % options.stallEveryMs === 0) {
        now += options.stallMs;
        mock.timers.tick(options.stallMs);
      } else {
        now += 1;
        mock.timers.tick(1);
      }
    }
    grid.close();
  } finally {
    mock.timers.reset();
  }
  return { maxPerSlot, maxStartDelayMs };
}

/** A small seeded PRNG (mulberry32), so every run of the simulation is the same. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
