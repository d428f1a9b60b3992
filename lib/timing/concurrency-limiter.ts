/**
 * At most `limit` tasks at once; the others wait in FIFO order. The pull loop runs every round through
 * one limiter, so a thousand agents whose timers fire together become a bounded stream of requests; the
 * agent's quoter runs its quotes through one of 1 (the TPM's PCR 16 reset and quote never interleave).
 */
export class ConcurrencyLimiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError('limit must be a positive integer');
    }
  }

  /** Tasks running now. */
  get running(): number {
    return this.active;
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Runs `task` when a slot is free; the slot is released however the task ends. A task whose `signal`
   * aborts while it waits leaves the queue and never runs: the promise rejects with the signal's reason
   * (as it does at once for a signal already aborted). Once started, a task runs to its end.
   */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    if (this.active >= this.limit) {
      await this.turn(signal);
    } else {
      this.active += 1;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next === undefined) {
        this.active -= 1;
      } else {
        // The slot passes straight to the next waiter: `active` stays the same.
        next();
      }
    }
  }

  /** Resolves when the slot is handed over; rejects, leaving the queue, when `signal` aborts first. */
  private turn(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const leave = (): void => {
        this.waiting.splice(this.waiting.indexOf(start), 1);
        reject(signal?.reason);
      };
      const start = (): void => {
        signal?.removeEventListener('abort', leave);
        resolve();
      };
      signal?.addEventListener('abort', leave, { once: true });
      this.waiting.push(start);
    });
  }
}
