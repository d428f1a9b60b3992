import type { Knex } from 'knex';

/**
 * Two partial indexes for the dashboard's reads, which otherwise read every verdict:
 *
 * - `audit_records_actions_idx` (stream, at) of the records that are not verdicts: a node page shows
 *   its node's admin actions, and found them among every verdict record of its stream (one per round,
 *   about 43,000 a day per agent at a 2 s interval, kept for ever by default).
 * - `verifier_history_failures_idx` (attempted_at) of failed rounds: the overview counts the failures
 *   of the last hour, at every live update's tick, and read every round of that hour (5.4 million at
 *   3,000 agents) to find them.
 *
 * Built in the migration's transaction, not `concurrently`: a concurrent build waits for every
 * transaction of the database that holds a snapshot, and a process waiting for the migration lock
 * holds one for as long as it waits (`lib/db/migration-lock.ts`), so two processes migrating at once
 * waited on each other until the lock wait ran out (ten minutes). A plain build holds writes to the
 * table while it runs (seconds to a few minutes on tens of millions of rows); a verifier writing
 * meanwhile keeps its verdicts and retries them until stored.
 */
const INDEXES = [
  ['audit_records_actions_idx', 'audit_records', `(stream, at) where action <> 'verdict'`],
  ['verifier_history_failures_idx', 'verifier_attestation_history', `(attempted_at) where outcome = 'fail'`],
] as const;

export async function up(knex: Knex): Promise<void> {
  for (const [name, table, definition] of INDEXES) {
    await knex.raw(`create index if not exists ?? on ?? ${definition}`, [name, table]);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const [name] of INDEXES) await knex.raw('drop index if exists ??', [name]);
}
