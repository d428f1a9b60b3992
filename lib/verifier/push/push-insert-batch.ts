import type { Logger } from 'pino';
import { StatementBatch } from '../statement-batch.js';
import type { InsertAfter, PushRepository } from './push-repository.js';

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
 * attestation was inserted and false otherwise: when anything had changed, and also when the shared
 * statement failed or the batch is closed. False sends the caller down the path that reads the agent
 * and inserts alone, so one agent's row the database refuses fails only that agent's request, and a
 * database that is down fails each request there.
 */
export class PushInsertBatch {
  private readonly batch: StatementBatch<InsertAfter, Set<string>>;

  constructor(repository: PushRepository, delayMs: number, log: Logger) {
    const insertAll = (inserts: readonly InsertAfter[]): Promise<Set<string>> =>
      repository.insertAfter(inserts).catch((error: unknown) => {
        // Each caller goes on by the slower path; a statement that fails every time would otherwise go unseen.
        log.warn({ err: error, inserts: inserts.length }, 'phase 1 batched insert failed: each attestation is read and inserted alone');
        throw error;
      });
    this.batch = new StatementBatch(insertAll, delayMs, MAX_BATCH, 'the push insert batch is closed');
  }

  insert(insert: InsertAfter): Promise<boolean> {
    return this.batch.submit(insert).then(
      (inserted) => inserted.has(insert.attestation.challenge),
      () => false,
    );
  }

  /**
   * Sends the inserts that wait and resolves when every statement has answered: the verifier calls it
   * after its listener closed and before its database does. Later inserts resolve false at once.
   */
  close(): Promise<void> {
    return this.batch.close();
  }
}
