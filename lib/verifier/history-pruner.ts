import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { PeriodicTask } from '../timing/periodic-task.js';

/** Rows one delete removes at most: few locks and little WAL at a time, and the round writers are not held up. */
const DEFAULT_BATCH = 5000;
/** How often the retention runs; the first run is at start. */
const DEFAULT_EVERY_MS = 10 * 60_000;

/**
 * One batch of rows past the retention: every outcome but `fail`, attempted more than `days` ago. Rows
 * another process is deleting are skipped, not waited for (several verifier processes may run this).
 */
const DELETE_BATCH = `
delete from verifier_attestation_history where id in (
  select id from verifier_attestation_history
  where attempted_at < now() - make_interval(days => ?) and outcome <> 'fail'
  limit ? for update skip locked)`;

export interface HistoryPrunerOptions {
  /** Rows older than this many days go, failures excepted. */
  readonly retentionDays: number;
  readonly log: Logger;
  readonly batch?: number;
  readonly everyMs?: number;
}

/**
 * The history's retention (`historyRetentionDays`): the pull and push verdicts' rows in
 * `verifier_attestation_history` grow by one per attestation (about 43 million a day for 1,000 agents
 * at a 2 s interval), so passing and retried rounds older than the retention are deleted; failures are
 * kept for ever, for whoever investigates a node. Off by default: then every row is kept and the
 * history's `pass` rows always sum to an agent's `attestation_count`; with it on, they do only over the
 * retained days.
 */
export class HistoryPruner {
  private readonly task: PeriodicTask;

  constructor(
    private readonly knex: Knex,
    private readonly options: HistoryPrunerOptions,
  ) {
    this.task = new PeriodicTask(
      options.everyMs ?? DEFAULT_EVERY_MS,
      () => this.pruneAndLog(),
      (error) => options.log.error({ err: error }, 'could not delete the verdict history past its retention; tried again later'),
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

  /** Deletes the rows past the retention, batch by batch; resolves to how many. */
  async pruneOnce(): Promise<number> {
    const batch = this.options.batch ?? DEFAULT_BATCH;
    let deleted = 0;
    for (;;) {
      const result = (await this.knex.raw(DELETE_BATCH, [this.options.retentionDays, batch])) as { rowCount?: number | null; affectedRows?: number };
      const count = result.rowCount ?? result.affectedRows ?? 0;
      deleted += count;
      if (count < batch || this.task.isStopped) return deleted;
    }
  }

  private async pruneAndLog(): Promise<void> {
    const deleted = await this.pruneOnce();
    if (deleted > 0) this.options.log.info({ deleted, retentionDays: this.options.retentionDays }, 'verdict history past its retention deleted');
  }
}
