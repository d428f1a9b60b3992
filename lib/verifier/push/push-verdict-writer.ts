import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { LockedAuditStreams, type AuditHeads } from '../../audit/audit-batch.js';
import type { AuditSigningKey } from '../../audit/audit-signing-key.js';
import { VERIFIER_AUDIT_TABLES } from '../../audit/audit-tables.js';
import type { Statements } from '../../db/fixed-statement.js';
import type { ExponentialBackoff } from '../../timing/backoff.js';
import { RoundRetrier, STORED_UNSEEN } from '../round-retrier.js';
import { RoundWriter, type RoundWrite } from '../round-writer.js';
import { agentVersionSql } from '../agent-row-version.js';
import type { StoredRound } from '../save-rounds.js';
import { verdictEvents } from '../verdict-audit.js';
import { FORGET_PUSH_BOOT_LOGS_SQL } from './push-boot-log-store.js';
import type { JudgedEvidenceTake } from './push-repository.js';
import { savePushRounds } from './push-verdict-statement.js';
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

/**
 * With the verdicts' audit records, in the statement that inserts them: each failing verdict's agent's
 * stored boot log tombstoned (`FORGET_PUSH_BOOT_LOGS_SQL`, docs/push.md "The boot log"), and the judged
 * attestations completed, each answering the version of its agent's row after its verdict.
 */
const COMPLETE_WITH_RECORDS = {
  name: 'push_complete',
  ctes: `forgotten as (
${FORGET_PUSH_BOOT_LOGS_SQL}
), completed as (
update verifier_push_attestations a set
  stage = 'verification_complete',
  evaluation = c.evaluation,
  failure_reason = c.failure_reason,
  verification_completed_at = now()
from jsonb_to_recordset(?::jsonb) as c(agent_id text, index int, evaluation text, failure_reason text)
where a.agent_id = c.agent_id and a.index = c.index
returning a.agent_id, (select ${agentVersionSql('g')} from verifier_agents g where g.agent_id = a.agent_id) as agent_version
)`,
  sql: 'select agent_id, agent_version from completed',
};

/** Who signs the verdicts' audit records, and what else their transaction stores. */
export interface PushVerdictAudit {
  /** The verdicts' records are signed with `key`, as `verifier:actor` (`verdictEvents`). */
  readonly key: AuditSigningKey;
  readonly actor: string;
  /** Runs in the verdicts' transaction after their records: the revocation notices of those failing their agent. */
  readonly alsoStore?: (statements: Statements, stored: readonly RoundWrite[]) => Promise<void>;
}

/** What one attempt's batch learnt about its verdict (filled in its transaction; each attempt has its own). */
interface BatchOutcome {
  taken: boolean;
  agentVersion: string | undefined;
  /** The audit head of the verdict's stream, as its statement locked it. */
  head: { seq: number; hash: string } | undefined;
}

/** A verdict with the take and completion the batch does for it; the round writer hands the same object to `save` and `alsoStore`. */
interface PushRoundWrite extends RoundWrite {
  readonly completion?: PushCompletion;
  readonly take?: JudgedEvidenceTake;
  readonly outcome?: BatchOutcome;
}

/**
 * The push verdicts' durable path: the pull loop's `RoundWriter`, with the same batch window, the
 * same rounds' statement and the audit's verdict records, and in the SAME transaction the evidence
 * take a verdict still needs (a verdict whose take fails is not stored) and the judged attestations
 * marked `verification_complete` — so an attestation never reads complete without its verdict stored,
 * nor the other way round, and a verdict is stored only for evidence taken once. The transaction is
 * two statements between BEGIN and COMMIT: the take, the rounds and the lock of the records' heads
 * (`savePushRounds`), then the records with the completions and the failures' boot logs forgotten
 * (`COMPLETE_WITH_RECORDS`) — and the revocation notices of a verdict failing its agent (`alsoStore`).
 * A batch that fails is retried (each verdict alone, by the pull loop's `RoundRetrier`) until it is
 * stored or the writer is closed: a verdict is never dropped because the database was away; meanwhile
 * `GET /health` says not ready. A verdict the database refuses for its values, alone, is not retried:
 * `write` rejects with `RoundRefused`, and the caller fails closed as for any verdict not stored
 * (`PushJudgement`: the agent failed when its evidence was taken, else nothing stored and a 500).
 */
export class PushVerdictWriter {
  private readonly writer: RoundWriter;
  private readonly retrier: RoundRetrier;
  private readonly closing = new AbortController();

  constructor(
    knex: Knex,
    rounds: Pick<VerifierAgentRepository, 'holdsRound'>,
    private readonly audit: PushVerdictAudit,
    batchDelayMs: number,
    log: Logger,
    health: Pick<VerifierHealth, 'writeFailed' | 'writeSettled'>,
    /** PostgreSQL: named prepared statements in a node-postgres transaction (`RoundWriterOptions.prepared`). */
    prepared = false,
    /** Told of each attempt that failed (`ironlime_verifier_failed_writes_total`, as the pull loop's are). */
    onWriteFailed?: () => void,
  ) {
    this.retrier = new RoundRetrier({ rounds, backoff: VERDICT_RETRY_BACKOFF, health, log, ...(onWriteFailed === undefined ? {} : { onWriteFailed }) });
    this.writer = new RoundWriter(knex, {
      batchDelayMs,
      prepared,
      // The writer hands back the writes `write` gave it.
      save: (run, writes) => this.save(run, writes as readonly PushRoundWrite[]),
      alsoStore: async (statements, stored) => {
        await this.complete(statements, stored);
        await audit.alsoStore?.(statements, stored);
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
   * Rejects with `RoundRefused` when the database refuses the verdict for its values (`RoundRetrier`).
   */
  async write(write: RoundWrite, completion?: PushCompletion, take?: JudgedEvidenceTake, urgent = false): Promise<PushWriteOutcome> {
    const result = await this.retrier.store({
      agentId: write.agentId,
      history: write.history,
      send: (roundId, retry) => this.attempt({ ...write, roundId, completion, take, outcome: { taken: take === undefined, agentVersion: undefined, head: undefined } }, retry || urgent),
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

  /** The round writer's `save`: the group's takes and rounds, and its records' heads locked, in one statement (`savePushRounds`). */
  private async save(run: Statements, writes: readonly PushRoundWrite[]): Promise<ReadonlyMap<string, StoredRound>> {
    const saved = await savePushRounds(run, writes.map((write) => ({ write, take: write.take })));
    for (const write of writes) {
      if (write.outcome === undefined) continue;
      if (write.take !== undefined) write.outcome.taken = saved.taken.has(write.agentId) || saved.stored.has(write.agentId);
      write.outcome.head = saved.heads.get(write.agentId);
    }
    return saved.stored;
  }

  /**
   * The stored verdicts' audit records, chained after the heads their statement locked, in one
   * statement with the judged attestations' completion and, for every failure stored — failing
   * evidence, a silence, an exception —, its agent's stored boot log tombstoned (docs/push.md "The boot
   * log"). Runs nothing when there is none of the three.
   */
  private async complete(statements: Statements, stored: readonly PushRoundWrite[]): Promise<void> {
    const events = verdictEvents(stored, this.audit.actor);
    const failed = stored.filter((write) => write.history?.outcome === 'fail').map((write) => write.agentId);
    const rows = stored.flatMap(({ agentId, completion: c }) =>
      c === undefined ? [] : [{ agent_id: agentId, index: c.index, evaluation: c.evaluation, failure_reason: c.failureReason }],
    );
    if (events.length === 0 && failed.length === 0 && rows.length === 0) return;
    const heads: AuditHeads = new Map();
    for (const write of stored) {
      if (write.outcome?.head !== undefined) heads.set(write.agentId, write.outcome.head);
    }
    const locked = new LockedAuditStreams(statements, heads, this.audit.key, VERIFIER_AUDIT_TABLES);
    const result = (await locked.insertWith(events, COMPLETE_WITH_RECORDS, [JSON.stringify(failed), JSON.stringify(rows)])) as { agent_id: string; agent_version: string | null }[];
    const versions = new Map(result.map((row) => [row.agent_id, row.agent_version ?? undefined]));
    for (const write of stored) {
      if (write.completion !== undefined && write.outcome !== undefined) write.outcome.agentVersion = versions.get(write.agentId);
    }
  }
}
