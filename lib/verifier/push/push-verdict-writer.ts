import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { fixedStatement, type Statements } from '../../db/fixed-statement.js';
import type { ExponentialBackoff } from '../../timing/backoff.js';
import { RoundRetrier, STORED_UNSEEN } from '../round-retrier.js';
import { RoundWriter, type RoundWrite } from '../round-writer.js';
import { agentVersionSql } from '../agent-row-version.js';
import { forgetPushBootLogs } from './push-boot-log-store.js';
import type { JudgedEvidenceTake, PushRepository } from './push-repository.js';
import type { VerifierAgentRepository } from '../verifier-agent-repository.js';
import type { VerifierHealth } from '../verifier-health.js';

/** What a judged push attestation becomes: `verification_complete` with its evaluation. */
export interface PushCompletion {
  readonly index: number;
  readonly evaluation: 'pass' | 'fail';
  readonly failureReason: string | null;
}

/**
 * A verdict's fate: stored (with the agent's row version after it, when it completed an attestation),
 * or not — its evidence was not taken (a replay, an old index, a changed row: the verdict must not
 * count), or the agent's row is no longer this owner's to write (stopped, deleted) or no longer in the
 * version the write expected (`RoundWrite.expectedVersion`).
 */
export type PushWriteOutcome =
  | { readonly stored: true; readonly agentVersion: string | undefined }
  | { readonly stored: false; readonly reason: 'evidence_not_taken' | 'agent_changed' };

/** A verdict whose batch failed is sent again alone after 250 ms, doubling up to 5 s. */
export const VERDICT_RETRY_BACKOFF: ExponentialBackoff = { initialDelayMs: 250, maxDelayMs: 5_000 };

/** Completes the judged attestations and answers the version of each agent's row after its verdict. */
const COMPLETE_ATTESTATIONS = fixedStatement(
  'push_complete_attestations',
  `
update verifier_push_attestations a set
  stage = 'verification_complete',
  evaluation = i.evaluation,
  failure_reason = i.failure_reason,
  verification_completed_at = now()
from jsonb_to_recordset(?::jsonb) as i(agent_id text, index int, evaluation text, failure_reason text)
where a.agent_id = i.agent_id and a.index = i.index
returning a.agent_id, (select ${agentVersionSql('g')} from verifier_agents g where g.agent_id = a.agent_id) as agent_version`,
);

/** What one attempt's batch learnt about its verdict (filled in its transaction; each attempt has its own). */
interface BatchOutcome {
  taken: boolean;
  agentVersion: string | undefined;
}

/** A verdict with the take and completion the batch does for it; the round writer hands the same object to `storable` and `alsoStore`. */
interface PushRoundWrite extends RoundWrite {
  readonly completion?: PushCompletion;
  readonly take?: JudgedEvidenceTake;
  readonly outcome?: BatchOutcome;
}

/**
 * The push verdicts' durable path: the pull loop's `RoundWriter` (its statement and the audit's
 * verdict records), with the same batch window, and in the SAME transaction the evidence take a
 * verdict still needs (first: a verdict whose take fails is not stored) and the judged attestations
 * marked `verification_complete` — so an attestation never reads complete without its verdict stored,
 * nor the other way round, and a verdict is stored only for evidence taken once. A batch that fails is
 * retried (each verdict alone, by the pull loop's `RoundRetrier`) until it is stored or the writer is
 * closed: a verdict is never dropped because the database was away; meanwhile `GET /health` says not
 * ready.
 */
export class PushVerdictWriter {
  private readonly writer: RoundWriter;
  private readonly retrier: RoundRetrier;
  private readonly closing = new AbortController();

  constructor(
    knex: Knex,
    private readonly repository: PushRepository,
    rounds: Pick<VerifierAgentRepository, 'holdsRound'>,
    auditVerdicts: (statements: Statements, stored: readonly RoundWrite[]) => Promise<void>,
    batchDelayMs: number,
    log: Logger,
    health: Pick<VerifierHealth, 'writeFailed' | 'writeSettled'>,
  ) {
    this.retrier = new RoundRetrier({ rounds, backoff: VERDICT_RETRY_BACKOFF, health, log });
    this.writer = new RoundWriter(knex, {
      batchDelayMs,
      storable: (trx, writes) => this.takeEvidence(trx, writes),
      alsoStore: async (statements, stored) => {
        await auditVerdicts(statements, stored);
        await this.complete(statements, stored);
      },
    });
  }

  /**
   * Stores `write` with the next batch — taking `take`'s evidence first and completing `completion`'s
   * attestation, when given. Resolves once stored or refused; retries while the database fails. The
   * verdict gets a round id (`RoundWrite.roundId`) before its first attempt: an attempt whose COMMIT
   * got no answer may have committed, and a retry asks the history for that id, so such a verdict
   * resolves stored (and its caller announces it) instead of being refused by its own earlier write.
   * `urgent` (a verdict that turns its agent failed) is sent alone and at once, as the pull loop's
   * failures are (`VerdictStore`): its detection and revocation notice do not wait for passes to share
   * a transaction. A failed push agent keeps attesting, so its later failures are not urgent: they
   * share batches, and a mass failure costs one transaction per agent once, not per attestation.
   */
  async write(write: RoundWrite, completion?: PushCompletion, take?: JudgedEvidenceTake, urgent = false): Promise<PushWriteOutcome> {
    const result = await this.retrier.store({
      agentId: write.agentId,
      history: write.history,
      send: (roundId, retry) => this.attempt({ ...write, roundId, completion, take, outcome: { taken: take === undefined, agentVersion: undefined } }, retry || urgent),
      stored: (outcome) => outcome.stored,
    });
    return result === STORED_UNSEEN ? { stored: true, agentVersion: undefined } : result;
  }

  /** Aborted by `close()`: from then on a verdict is not waited for, nor is what a verdict waits for (`PushJudgement`'s re-read). */
  get closed(): AbortSignal {
    return this.closing.signal;
  }

  /** Stores the verdicts still waiting for their batch and resolves once each has its answer (shutdown: then close the database). */
  close(): Promise<void> {
    this.closing.abort();
    this.retrier.close();
    return this.writer.close();
  }

  /** One write of `sent` (`alone`: in a transaction of its own, at once): what its batch learnt about it. */
  private async attempt(sent: PushRoundWrite & { readonly outcome: BatchOutcome }, alone: boolean): Promise<PushWriteOutcome> {
    const stored = await this.writer.write(sent, alone);
    if (!sent.outcome.taken) return { stored: false, reason: 'evidence_not_taken' };
    return stored ? { stored: true, agentVersion: sent.outcome.agentVersion } : { stored: false, reason: 'agent_changed' };
  }

  /** The round writer's `storable`: takes the evidence of the verdicts that need it; those whose take fails are not stored. */
  private async takeEvidence(trx: Knex.Transaction, writes: readonly PushRoundWrite[]): Promise<readonly PushRoundWrite[]> {
    const takes = writes.flatMap((write) => (write.take === undefined ? [] : [write.take]));
    if (takes.length === 0) return writes;
    const taken = await this.repository.takeJudgedEvidence(takes, trx);
    for (const write of writes) {
      if (write.take !== undefined && write.outcome !== undefined) write.outcome.taken = taken.has(write.agentId);
    }
    return writes.filter((write) => write.outcome?.taken !== false);
  }

  /**
   * Completes the judged attestations. Every failure stored — failing evidence, a silence, an exception —
   * tombstones its agent's stored boot log in the same transaction (docs/push.md "The boot log").
   */
  private async complete(statements: Statements, stored: readonly PushRoundWrite[]): Promise<void> {
    await forgetPushBootLogs(statements, stored.filter((write) => write.history?.outcome === 'fail').map((write) => write.agentId));
    const rows = stored.flatMap(({ agentId, completion: c }) =>
      c === undefined ? [] : [{ agent_id: agentId, index: c.index, evaluation: c.evaluation, failure_reason: c.failureReason }],
    );
    if (rows.length === 0) return;
    const result = (await statements(COMPLETE_ATTESTATIONS, [JSON.stringify(rows)])) as { agent_id: string; agent_version: string | null }[];
    const versions = new Map(result.map((row) => [row.agent_id, row.agent_version ?? undefined]));
    for (const write of stored) {
      if (write.completion !== undefined && write.outcome !== undefined) write.outcome.agentVersion = versions.get(write.agentId);
    }
  }
}
