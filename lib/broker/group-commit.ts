/** A transaction that decides a batch of items: one outcome each, in order. */
export type CommitBatch<Item, Outcome> = (batch: readonly Item[]) => Promise<readonly Outcome[]>;

interface Waiting<Item, Outcome> {
  readonly item: Item;
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
}

/**
 * Group commit: an item that arrives while a batch's transaction is under way waits for the next one,
 * which takes every item queued by then (at most `maxBatch`), so under load the transaction's lock,
 * reads, signature, insert and commit are shared, and on an idle broker an item's transaction starts at
 * once (no timer). Items with the same `key` (one RCAR session's claims) never share a batch: the later
 * one waits for the next. Each item resolves to its own outcome once the batch committed, or rejects
 * with the batch's error (nothing of the batch stored).
 */
export class GroupCommit<Item, Outcome> {
  private queue: Waiting<Item, Outcome>[] = [];
  private writing = false;

  constructor(
    private readonly commit: CommitBatch<Item, Outcome>,
    private readonly maxBatch: number,
    private readonly key?: (item: Item) => string,
  ) {}

  submit(item: Item): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.writing) void this.write();
    });
  }

  /** Commits batches until the queue is empty. */
  private async write(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const batch = this.nextBatch();
      try {
        const outcomes = await this.commit(batch.map((waiting) => waiting.item));
        if (outcomes.length !== batch.length) throw new Error(`a batch of ${batch.length} answered ${outcomes.length} outcomes`);
        batch.forEach((waiting, index) => waiting.resolve(outcomes[index] as Outcome));
      } catch (error) {
        for (const waiting of batch) waiting.reject(error);
      }
    }
    this.writing = false;
  }

  /** Takes from the queue, in order, up to `maxBatch` items with distinct keys; the others stay queued. */
  private nextBatch(): Waiting<Item, Outcome>[] {
    const batch: Waiting<Item, Outcome>[] = [];
    const left: Waiting<Item, Outcome>[] = [];
    const keys = new Set<string>();
    for (const waiting of this.queue) {
      const key = this.key?.(waiting.item);
      if (batch.length >= this.maxBatch || (key !== undefined && keys.has(key))) {
        left.push(waiting);
        continue;
      }
      if (key !== undefined) keys.add(key);
      batch.push(waiting);
    }
    this.queue = left;
    return batch;
  }
}
