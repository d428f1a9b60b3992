/** A database statement for many items, resolving to what the statement did for them. */
export type BatchStatement<Item, Outcome> = (items: readonly Item[]) => Promise<Outcome>;

interface Waiting<Item, Outcome> {
  readonly item: Item;
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
}

/**
 * Items that arrive within `delayMs` of each other share one statement (at most `maxBatch` items
 * each): the verifier's hot-path writes cost a share of one round trip instead of one each. `submit`
 * resolves to the outcome of the statement its item went in, and rejects when that statement failed
 * or once the batch is closed; what a rejection means (keep and retry, or read and decide again) is
 * the caller's.
 */
export class StatementBatch<Item, Outcome> {
  private queue: Waiting<Item, Outcome>[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Statements sent and not yet answered (`close` waits for them). */
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly statement: BatchStatement<Item, Outcome>,
    private readonly delayMs: number,
    private readonly maxBatch: number,
    /** Why a submit after `close` is refused, for its error. */
    private readonly closedMessage: string,
  ) {}

  /** Sends `item` with the next statement (`alone`: in a statement of its own, at once). */
  submit(item: Item, alone = false): Promise<Outcome> {
    if (this.closed) {
      return Promise.reject(new Error(this.closedMessage));
    }
    if (alone) {
      return this.track(this.send([item]));
    }
    return new Promise<Outcome>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.maxBatch) {
        this.flush();
      } else {
        this.timer ??= setTimeout(() => this.flush(), this.delayMs);
      }
    });
  }

  /**
   * Sends what is queued at once (no timer is left to keep the process alive) and resolves when every
   * statement sent so far has answered, so the database can be closed after it. Later submits are refused.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.flush();
    await Promise.all([...this.inFlight]);
  }

  /**
   * Sends what is queued now, without waiting for the rest of its window (a process stopping). The
   * batch stays open: a later submit waits for a window of its own, as before.
   */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) {
      return;
    }
    const answered = this.send(batch.map((waiting) => waiting.item)).then(
      (outcome) => {
        for (const waiting of batch) waiting.resolve(outcome);
      },
      (error: unknown) => {
        for (const waiting of batch) waiting.reject(error);
      },
    );
    this.track(answered);
  }

  /** The statement's promise; a statement that throws instead of rejecting is a rejection too (never an uncaught throw in a timer). */
  private send(items: readonly Item[]): Promise<Outcome> {
    try {
      return this.statement(items);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Keeps `sent` in `inFlight` until it settles; returns it as it is. */
  private track<T>(sent: Promise<T>): Promise<T> {
    const settled = sent.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return sent;
  }
}
