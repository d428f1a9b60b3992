/** A round waiting for its slot; `RoundStartGrid.cancel` takes it out. */
export interface GridEntry {
  readonly slot: number;
  readonly run: () => void;
}

/** Node's timer limit (~24.8 days); a longer delay would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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
 * rounds. A round starts at most one slot later than asked; the slot is far inside the 10 % of the
 * interval after which a round counts as late.
 */
export class RoundStartGrid {
  private readonly slots = new Map<number, Slot>();

  constructor(
    private readonly slotMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Runs `run` once, at the end of the slot that holds `delayMs` from now; the time is `dueAt(entry)`. */
  at(delayMs: number, run: () => void): GridEntry {
    const now = this.now();
    const slot = Math.ceil((now + Math.min(delayMs, MAX_TIMER_MS - this.slotMs)) / this.slotMs);
    const entry: GridEntry = { slot, run };
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

  /** When `entry` runs (epoch milliseconds). */
  dueAt(entry: GridEntry): number {
    return entry.slot * this.slotMs;
  }

  /** Takes `entry` out if it has not run yet; nothing otherwise. */
  cancel(entry: GridEntry | undefined): void {
    if (entry === undefined) {
      return;
    }
    const slot = this.slots.get(entry.slot);
    if (slot === undefined || !slot.entries.delete(entry) || slot.entries.size > 0) {
      return;
    }
    clearTimeout(slot.timer);
    this.slots.delete(entry.slot);
  }

  private fire(slotIndex: number): void {
    const slot = this.slots.get(slotIndex);
    this.slots.delete(slotIndex);
    if (slot === undefined) {
      return;
    }
    // An entry added to this slot by a callback below lands in a new slot object of the same index,
    // which gets its own timer: nothing added while firing is lost.
    for (const entry of slot.entries) {
      entry.run();
    }
  }
}
