import type { Knex } from 'knex';
import { RoundWriter, type RoundWrite } from '../round-writer.js';

/** What a judged push attestation becomes: `verification_complete` with its evaluation. */
export interface PushCompletion {
  readonly index: number;
  readonly evaluation: 'pass' | 'fail';
  readonly failureReason: string | null;
}

/**
 * How long a push verdict waits for others to share its transaction: a tenth of `quote_interval`, at
 * most 500 ms. Push agents attest at independent times, so the pull loop's 20 ms rarely finds a
 * second verdict, and each transaction (the verdicts' statement, the attestations' completion, the
 * audit records' four, begin and commit) costs the verifier eight database round trips. The agent
 * waits for its 202 meanwhile and starts its next interval after it, so the wait lengthens its cycle:
 * a tenth keeps that within 10 %. Counted in the benchmark (50 agents, 2 s interval): 500 ms gathered
 * about 10 verdicts per transaction but stretched the agents' cycle from 2.1 s to 2.9 s.
 */
export function pushBatchDelayMs(quoteIntervalSeconds: number): number {
  return Math.min(500, Math.max(20, (quoteIntervalSeconds * 1000) / 10));
}

const COMPLETE_ATTESTATIONS = `
update verifier_push_attestations a set
  stage = 'verification_complete',
  evaluation = i.evaluation,
  failure_reason = i.failure_reason,
  verification_completed_at = now()
from jsonb_to_recordset(?::jsonb) as i(agent_id text, index int, evaluation text, failure_reason text)
where a.agent_id = i.agent_id and a.index = i.index`;

/** A verdict with the attestation it completes; the round writer hands the same object to `alsoStore`. */
interface PushRoundWrite extends RoundWrite {
  readonly completion?: PushCompletion;
}

/**
 * The push verdicts' durable path: the pull loop's `RoundWriter` (its statement and the audit's
 * verdict records), with a longer batch, and the judged attestations marked `verification_complete`
 * in the SAME transaction — so an attestation never reads complete without its verdict stored, nor
 * the other way round.
 */
export class PushVerdictWriter {
  private readonly writer: RoundWriter;

  constructor(knex: Knex, auditVerdicts: (trx: Knex.Transaction, stored: readonly RoundWrite[]) => Promise<void>, batchDelayMs: number) {
    this.writer = new RoundWriter(knex, {
      batchDelayMs,
      alsoStore: async (trx, stored) => {
        await auditVerdicts(trx, stored);
        await this.complete(trx, stored);
      },
    });
  }

  /** Stores `write` (and completes `completion`, when given) with the next batch; false when the agent is no longer this owner's. */
  write(write: RoundWrite, completion?: PushCompletion): Promise<boolean> {
    const withCompletion: PushRoundWrite = completion === undefined ? write : { ...write, completion };
    return this.writer.write(withCompletion);
  }

  /** Stores the verdicts still waiting for their batch and resolves once each has its answer (shutdown: then close the database). */
  close(): Promise<void> {
    return this.writer.close();
  }

  private async complete(trx: Knex.Transaction, stored: readonly PushRoundWrite[]): Promise<void> {
    const rows = stored.flatMap((write) => {
      const completion = write.completion;
      return completion === undefined
        ? []
        : [{ agent_id: write.agentId, index: completion.index, evaluation: completion.evaluation, failure_reason: completion.failureReason }];
    });
    if (rows.length > 0) await trx.raw(COMPLETE_ATTESTATIONS, [JSON.stringify(rows)]);
  }
}
