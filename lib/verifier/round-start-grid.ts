import { performance } from 'node:perf_hooks';

/** A round waiting for its slot; `RoundStartGrid.cancel` takes it out. */
export interface GridEntry {
  readonly slot: number;
  readonly run: () => void;
  cancelled: boolean;
}

/** Node's timer limit (~24.8 days); a longer delay would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The most slots past its asked slot that a round is passed on, whatever its slack: the scan over full
 * slots stays short when a whole fleet asks for one slot (a mass restart, every agent due at once),
 * where a slack of 5 % of an hour's interval would reach 9,000 slots and the scan would grow with the
 * square of the fleet.
 */
export const MAX_REACH_SLOTS = 50;

/** A round is late when it starts more than this share of the quote interval after it was due (as bench/ counts it). */
export const LATE_SHARE = 0.1;

/** The slot of the pull loop's grid: rounds due within it start together (10 a slot at 500 rounds/s). */
export const ROUND_START_SLOT_MS = 20;

export interface RoundStartGridOptions {
  /** Told how many rounds each slot started (the rounds-per-slot metric). */
  readonly started?: (rounds: number) => void;
  /** Rounds a slot takes before rounds asked with slack move on to the next slots; absent: no limit. */
  readonly capacity?: () => number;
}

/**
 * A slot's capacity for `agents` polled every `intervalMs`: twice their fair share of a slot, at least
 * one. A stall of the event loop (a long GC, a slow batch) ends many rounds at once, and a round shorter
 * than a slot asks for its next start in the same slot as the others that ended with it: without a cap
 * those rounds would start together again every interval, and each later stall would add the slots it
 * covered to the pile (docs/fleet.md, "Thirteenth pass"). Twice the fair share leaves room for the
 * rounds' own jitter and for the uneven spread of agents enrolled one after another; the pull loop
 * passes the count of agents polled at each ask, so the capacity follows enrolments and drops.
 */
export function slotCapacity(agents: number, intervalMs: number, slotMs: number): number {
  if (!(intervalMs > 0)) {
    return Infinity;
  }
  return Math.max(1, 2 * Math.ceil((agents * slotMs) / intervalMs));
}

interface Slot {
  readonly timer: NodeJS.Timeout;
  readonly entries: Set<GridEntry>;
}

/**
 * Starts the pull rounds on a grid of `slotMs` slots: every round due inside one slot starts from one
 * timer callback, at the slot's end. With one timer per agent, 1,000 agents at a 2 s interval woke the
 * event loop about 500 times a second for one request each, and their replies came back one per wake
 * too; here the rounds of a slot send their requests in one turn of the loop, and the loop's fixed
 * cost per wake (the `epoll` call, the timer list, the microtask checkpoint) is shared by the slot's
 * rounds. A round starts one slot later than asked at most (plus the event loop's own lag, and the
 * slack it was asked with when its slot was full); the slot is far inside the 10 % of the interval after
 * which a round counts as late. Slots are counted on the monotonic clock that Node's timers use, so a
 * step of the system clock (NTP, an operator) moves no round.
 */
export class RoundStartGrid {
  private readonly slots = new Map<number, Slot>();

  constructor(
    private readonly slotMs: number,
    private readonly now: () => number = () => performance.now(),
    private readonly options: RoundStartGridOptions = {},
  ) {}

  /**
   * Runs `run` once, at the end of the slot that holds `delayMs` from now (unless cancelled first). With
   * `slackMs`, a slot already holding its capacity passes the round on to the next slot with room, at most
   * `slackMs` (and `MAX_REACH_SLOTS` slots) later; when none in that reach has room, the least full of them
   * takes it (the earliest of a tie).
   */
  at(delayMs: number, run: () => void, slackMs = 0): GridEntry {
    const now = this.now();
    const asked = Math.ceil((now + Math.min(delayMs, MAX_TIMER_MS - this.slotMs - slackMs)) / this.slotMs);
    const slot = this.slotWithRoom(asked, Math.min(MAX_REACH_SLOTS, Math.floor(slackMs / this.slotMs)));
    const entry: GridEntry = { slot, run, cancelled: false };
    const existing = this.slots.get(slot);
    if (existing !== undefined) {
      existing.entries.add(entry);
      return entry;
    }
    const entries = new Set<GridEntry>([entry]);
    const timer = setTimeout(() => this.fire(slot), Math.max(0, slot * this.slotMs - now));
    this.slots.set(slot, { timer, entries });
    return entry;
  }

  /** Keeps `entry` from running, even when its slot is firing now; nothing once it ran. */
  cancel(entry: GridEntry | undefined): void {
    if (entry === undefined) {
      return;
    }
    entry.cancelled = true;
    const slot = this.slots.get(entry.slot);
    if (slot === undefined || !slot.entries.delete(entry) || slot.entries.size > 0) {
      return;
    }
    clearTimeout(slot.timer);
    this.slots.delete(entry.slot);
  }

  /** Drops every waiting round and its timer (the scheduler closes). */
  close(): void {
    for (const slot of this.slots.values()) {
      clearTimeout(slot.timer);
      for (const entry of slot.entries) {
        entry.cancelled = true;
      }
    }
    this.slots.clear();
  }

  private slotWithRoom(asked: number, reach: number): number {
    const capacity = this.options.capacity?.() ?? Infinity;
    let leastFull = asked;
    let leastFullSize = Infinity;
    for (let slot = asked; slot <= asked + reach; slot += 1) {
      const size = this.slots.get(slot)?.entries.size ?? 0;
      if (size < capacity) {
        return slot;
      }
      if (size < leastFullSize) {
        leastFull = slot;
        leastFullSize = size;
      }
    }
    return leastFull;
  }

  private fire(slotIndex: number): void {
    const slot = this.slots.get(slotIndex);
    this.slots.delete(slotIndex);
    if (slot === undefined) {
      return;
    }
    // The entries are copied first: one added to this slot index by a callback below lands in a new
    // slot, with its own timer, and runs there.
    let rounds = 0;
    for (const entry of [...slot.entries]) {
      if (entry.cancelled) {
        continue;
      }
      rounds += 1;
      try {
        entry.run();
      } catch (error) {
        // Thrown where a timer of its own would have thrown it, after the slot's other rounds started.
        process.nextTick(() => {
          throw error;
        });
      }
    }
    if (rounds > 0) {
      this.options.started?.(rounds);
    }
  }
}
