import type { Knex } from 'knex';

/**
 * A round's history row and a liveness status change carry the tenant of the node they were written
 * for, so that a tenant reads only its own: the history is kept after a node is deleted, and another
 * tenant may later enrol the freed id. New rows take the node row's tenant as they are written.
 *
 * Existing rows: a row written since the node now enrolled under its id was enrolled (at or after
 * its `created_at`) is that node's tenant's. Any other row (a deleted node's, or an earlier
 * enrolment's of the same id) cannot be told apart from another tenant's, so it keeps null, which
 * fails closed: only a client certificate reads it (docs/verifier.md gives the query that hands such
 * rows to a tenant). Migrations print nothing, hence the documented query.
 *
 * Not one transaction: the history holds tens of millions of rows (a row per round), and one UPDATE
 * of them all in the transaction of the ALTER TABLE would keep the table's exclusive lock until it
 * ends, every verdict write of a running verifier waiting (a rolling upgrade): about 45 s per million
 * rows on a test machine. The columns are added in a short transaction of their own, then existing rows are filled
 * in batches of ids, each its own statement holding only its rows' locks. A run stopped midway is
 * taken up again: the column is added only if missing, and only rows still without a tenant are filled.
 */
export const config = { transaction: false };

/** Rows per fill statement: a few seconds at most, so a verdict writer never waits long on one. */
const FILL_BATCH = 20_000;

export async function up(knex: Knex): Promise<void> {
  await knex.transaction(async (trx) => {
    for (const [table] of TABLES) await trx.raw('alter table ?? add column if not exists tenant varchar(128)', [table]);
  });
  for (const [table, nodes, time] of TABLES) {
    const range = (await knex(table).min({ low: 'id' }).max({ high: 'id' }).first()) as { low: string | number | null; high: string | number | null };
    if (range.low === null || range.high === null) continue;
    for (let from = Number(range.low) - 1; from < Number(range.high); from += FILL_BATCH) {
      await knex.raw(`update ?? as h set tenant = n.tenant from ?? as n where h.id > ? and h.id <= ? and h.tenant is null and n.agent_id = h.agent_id and h.?? >= n.created_at`, [
        table,
        nodes,
        from,
        from + FILL_BATCH,
        time,
      ]);
    }
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.transaction(async (trx) => {
    for (const [table] of TABLES) {
      await trx.schema.alterTable(table, (t) => {
        t.dropColumn('tenant');
      });
    }
  });
}

const TABLES = [
  ['verifier_attestation_history', 'verifier_agents', 'attempted_at'],
  ['verifier_liveness_events', 'verifier_liveness', 'at'],
] as const;
