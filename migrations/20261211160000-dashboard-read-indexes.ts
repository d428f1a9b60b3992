import type { Knex } from 'knex';
import ClientPgLite from 'knex-pglite';

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
 * Built `concurrently` on PostgreSQL, outside a transaction: both tables hold tens of millions of rows,
 * and a plain build would hold every verdict write of a running verifier (a rolling upgrade) for its
 * whole duration. A build stopped midway leaves an invalid index, dropped and built again on the next
 * run. PGlite (one session, nothing to wait for) cannot build concurrently: a plain build there.
 */
export const config = { transaction: false };

const INDEXES = [
  ['audit_records_actions_idx', 'audit_records', `(stream, at) where action <> 'verdict'`],
  ['verifier_history_failures_idx', 'verifier_attestation_history', `(attempted_at) where outcome = 'fail'`],
] as const;

export async function up(knex: Knex): Promise<void> {
  const concurrently = knex.client instanceof ClientPgLite ? '' : 'concurrently';
  for (const [name, table, definition] of INDEXES) {
    if (await isInvalid(knex, name)) await knex.raw(`drop index ${concurrently} if exists ??`, [name]);
    await knex.raw(`create index ${concurrently} if not exists ?? on ?? ${definition}`, [name, table]);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const [name] of INDEXES) await knex.raw('drop index if exists ??', [name]);
}

/** The index exists in this schema and an interrupted concurrent build left it invalid. */
async function isInvalid(knex: Knex, name: string): Promise<boolean> {
  const result = (await knex.raw(
    `select i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid where c.relname = ? and c.relnamespace = current_schema()::regnamespace`,
    [name],
  )) as { rows: { valid: boolean }[] };
  return result.rows[0]?.valid === false;
}
