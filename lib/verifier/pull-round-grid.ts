import { LATE_SHARE, RoundStartGrid, slotCapacity } from './round-start-grid.js';

/** How far past its asked slot a full slot may push a round, as a share of the quote interval: half the late share. */
const SLACK_SHARE_OF_INTERVAL = LATE_SHARE / 2;

/**
 * How much later than asked a full slot may push a pull round polled every `intervalMs` on `slotMs`
 * slots: 5 % of the interval, but never so much that the slack, the slot's own rounding (up to a slot)
 * and one more slot for the event loop's lag pass the late bound — at a 0.4 s interval the 20 ms of
 * rounding alone is half of the 40 ms bound, so no slack is left there.
 */
export function pullRoundSlackMs(intervalMs: number, slotMs: number): number {
  return Math.max(0, Math.min(SLACK_SHARE_OF_INTERVAL * intervalMs, LATE_SHARE * intervalMs - 2 * slotMs));
}

export interface PullRoundGridOptions {
  readonly slotMs: number;
  readonly intervalMs: number;
  /** Agents polled now; read at every ask, so the capacity follows enrolments and drops. */
  readonly agents: () => number;
  /** Told how many rounds each slot started (the rounds-per-slot metric). */
  readonly started?: (rounds: number) => void;
  /** The clock slots are counted on; default the monotonic one Node's timers use. */
  readonly now?: () => number;
}

/** The pull loop's grid, the slack its rounds ask with, and a slot's capacity now. */
export interface PullRoundGrid {
  readonly grid: RoundStartGrid;
  readonly slackMs: number;
  readonly capacity: () => number;
}

/**
 * The round-start grid as the pull loop uses it: each slot capped at `slotCapacity` of the agents
 * polled at the time of the ask, and the rounds asking with `slackMs` (re-reads of an agent row after a
 * failed read ask without it). One construction for `PullScheduler` and the soak tests.
 */
export function pullRoundGrid(options: PullRoundGridOptions): PullRoundGrid {
  const capacity = (): number => slotCapacity(options.agents(), options.intervalMs, options.slotMs);
  const grid = new RoundStartGrid(options.slotMs, options.now, {
    ...(options.started === undefined ? {} : { started: options.started }),
    capacity,
  });
  return { grid, slackMs: pullRoundSlackMs(options.intervalMs, options.slotMs), capacity };
}
