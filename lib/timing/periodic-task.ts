/**
 * Runs `run` at `start`, then `everyMs` after each run ended (never two at once, however long one
 * takes), until `stop`. A run that rejects is handed to `onError` and the next one is still scheduled.
 * Unlike `RepeatingCheck`, whose owner tracks each run, the task keeps its own run in flight, so
 * `stop` can wait for it.
 */
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly everyMs: number,
    private readonly run: () => Promise<void>,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** True once `stop` was called: a long run checks it between its steps and ends early. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** Runs now (synchronously up to the run's first await), then every `everyMs`. */
  start(): void {
    this.runAndReschedule();
  }

  /** No further runs; resolves when a run in progress has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private runAndReschedule(): void {
    // The executor runs `run` now; a synchronous throw becomes a rejection like any other.
    this.running = new Promise<void>((resolve) => resolve(this.run()))
      .catch((error: unknown) => this.onError(error))
      .finally(() => {
        if (!this.stopped) this.timer = setTimeout(() => this.runAndReschedule(), this.everyMs);
      });
  }
}
