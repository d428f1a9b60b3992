/** When and how a `RepeatingCheck` runs its work. */
export interface RepeatingCheckTiming {
  readonly periodMs: number;
  /** Runs one check as its owner's work in flight, so a shutdown waits for it. */
  readonly track: (task: Promise<void>) => void;
  /** Once true, no further check is scheduled. */
  readonly isClosed: () => boolean;
}

/**
 * Runs `check` `periodMs` after the previous run ended (never two at once, however long one takes),
 * each run tracked by its owner, until the owner is closed or `stop` is called. `check` handles its
 * own failures: a rejection only ends that run.
 */
export class RepeatingCheck {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly timing: RepeatingCheckTiming,
    private readonly check: () => Promise<void>,
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.timing.isClosed()) {
      return;
    }
    this.timer = setTimeout(() => this.timing.track(this.check().finally(() => this.schedule())), this.timing.periodMs);
  }
}
