import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit-log.js';
import type { AuditSigningKey } from '../audit/audit-signing-key.js';
import { pruneAuditStream } from '../audit/audit-stream-prune.js';
import { VERIFIER_AUDIT_TABLES } from '../audit/audit-tables.js';
import { PeriodicTask } from '../timing/periodic-task.js';
import { FLEET_STREAM } from './reserved-agent-ids.js';

/**
 * Records one transaction reads at most (and so holds, as an export's batch: about 100 KiB typically,
 * 100 MB were each a failed verdict at its size bound) and deletes: few locks and little WAL at a time.
 */
const DEFAULT_BATCH = 200;
/** How often the retention runs; the first run is at start. */
const DEFAULT_EVERY_MS = 10 * 60_000;
const DAY_MS = 86_400_000;

export interface AuditPrunerOptions {
  /** Passing verdicts older than this many days go; everything else is kept. */
  readonly retentionDays: number;
  readonly key: AuditSigningKey;
  /** Where the run's summary (`audit.prune`) is appended, in the `fleet` stream. */
  readonly auditLog: AuditLog;
  /** This verifier's instance id: the summary's actor is `verifier:<actor>`. */
  readonly actor: string;
  readonly log: Logger;
  readonly batch?: number;
  readonly everyMs?: number;
}

/** What one run did. */
export interface AuditPruneSummary {
  /** Streams that lost records. */
  readonly streams: number;
  readonly records: number;
  readonly cutoff: string;
}

/**
 * The signed audit log's retention (`auditRetentionDays`): every verdict appends a record to its
 * agent's stream (about 43 million a day at 1,000 agents and a 2 s interval), so passing verdicts older
 * than the retention are deleted, stream by stream, a bounded batch a transaction, each run of them
 * replaced by a signed checkpoint that keeps the chain checkable (`pruneAuditStream`). Failed verdicts,
 * admin actions and liveness changes are kept for ever. A run that deleted anything appends its
 * summary to the `fleet` stream (`audit.prune`: streams, records, cutoff, retention). Several verifier
 * processes may run it on one database: a stream another one is pruning is skipped, not waited for.
 */
export class AuditPruner {
  private readonly task: PeriodicTask;

  constructor(
    private readonly knex: Knex,
    private readonly options: AuditPrunerOptions,
  ) {
    this.task = new PeriodicTask(
      options.everyMs ?? DEFAULT_EVERY_MS,
      () => this.pruneAndLog(),
      (error) => options.log.error({ err: error }, 'could not delete the audit records past their retention; tried again later'),
    );
  }

  /** Runs now, then every `everyMs`. A failed run is logged and tried again at the next one. */
  start(): void {
    this.task.start();
  }

  /** No further runs; resolves when a run in progress has stopped, after its current batch. */
  stop(): Promise<void> {
    return this.task.stop();
  }

  /** Prunes every stream once, then appends the summary when anything was deleted. */
  async pruneOnce(): Promise<AuditPruneSummary> {
    const { retentionDays, key, log } = this.options;
    // A resumed scan reads the record before it again: with fewer than 2 a batch it would not move on.
    const batch = Math.max(2, this.options.batch ?? DEFAULT_BATCH);
    const cutoff = new Date(Date.now() - retentionDays * DAY_MS).toISOString();
    // The fleet stream holds admin actions and these summaries only, all kept: not read.
    const heads = (await this.knex(VERIFIER_AUDIT_TABLES.heads).select('stream').whereNot('stream', FLEET_STREAM).orderBy('stream')) as { stream: string }[];
    let streams = 0;
    let records = 0;
    for (const { stream } of heads) {
      let deleted = 0;
      let resumeAt: number | undefined;
      do {
        const result = await pruneAuditStream(this.knex, key, stream, cutoff, batch, resumeAt);
        if (result.skipped === 'broken') log.error({ stream, problem: result.message }, 'audit stream not pruned: its stored chain does not hold');
        deleted += result.deleted;
        resumeAt = result.resumeAt;
      } while (resumeAt !== undefined && !this.task.isStopped);
      if (deleted > 0) streams += 1;
      records += deleted;
      if (this.task.isStopped) break;
    }
    if (records > 0) {
      await this.options.auditLog.append({
        stream: FLEET_STREAM,
        at: new Date().toISOString(),
        actor: `verifier:${this.options.actor}`,
        action: 'audit.prune',
        agentId: null,
        details: { streams, records, cutoff, retention_days: retentionDays },
      });
    }
    return { streams, records, cutoff };
  }

  private async pruneAndLog(): Promise<void> {
    const summary = await this.pruneOnce();
    if (summary.records > 0) this.options.log.info({ ...summary, retentionDays: this.options.retentionDays }, 'audit records past their retention deleted, signed checkpoints stored');
  }
}
