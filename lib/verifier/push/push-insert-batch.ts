import type { InsertAfter, PushRepository } from './push-repository.js';

interface Waiting {
  readonly insert: InsertAfter;
  resolve(inserted: boolean): void;
  reject(error: unknown): void;
}

/** Most inserts in one statement. */
const MAX_BATCH = 250;

/**
 * How long a phase-1 insert waits for others to share its statement: a fortieth of `quote_interval`,
 * at most 50 ms, so an agent's cycle lengthens by at most 2.5 %. Each statement is a database round
 * trip of the verifier; at 2 s and 200 agents (about 100 attestations/s) 50 ms gathers about five.
 */
export function pushInsertDelayMs(quoteIntervalSeconds: number): number {
  return Math.min(50, Math.max(1, (quoteIntervalSeconds * 1000) / 40));
}

/**
 * Phase 1's inserts after a verdict this process stored (`PushRepository.insertAfter`), gathered for
 * up to `delayMs` into one statement. Each keeps its own conditions; `insert` resolves true when its
 * attestation was inserted, false when anything had changed, and rejects when the statement failed
 * (nothing of the batch was inserted).
 */
export class PushInsertBatch {
  private queue: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly statements = new Set<Promise<void>>();

  constructor(
    private readonly repository: PushRepository,
    private readonly delayMs: number,
  ) {}

  insert(insert: InsertAfter): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ insert, resolve, reject });
      if (this.queue.length >= MAX_BATCH) {
        this.flush();
      } else {
        this.timer ??= setTimeout(() => this.flush(), this.delayMs);
      }
    });
  }

  /**
   * Sends what waits now and resolves when every statement sent has answered: the verifier calls it
   * after its listener closed and before its database does, so no waiting insert meets a closed pool.
   */
  async close(): Promise<void> {
    if (this.queue.length > 0) this.flush();
    await Promise.all(this.statements);
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = [];
    const statement = this.repository.insertAfter(batch.map((w) => w.insert)).then(
      (inserted) => {
        for (const waiting of batch) waiting.resolve(inserted.has(waiting.insert.attestation.challenge));
      },
      (error: unknown) => {
        for (const waiting of batch) waiting.reject(error);
      },
    );
    this.statements.add(statement);
    void statement.finally(() => this.statements.delete(statement));
  }
}
