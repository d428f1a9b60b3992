import type { Knex } from 'knex';

/**
 * A round's history row and a liveness status change carry the tenant of the node they were written
 * for, so that a tenant reads only its own: the history is kept after a node is deleted, and another
 * tenant may later enrol the freed id. New rows take the node row's tenant as they are written.
 *
 * Existing rows: a row written since the node now enrolled under its id was enrolled (at or after
 * its `created_at`) is that node's tenant's. Any other row (a deleted node's, or an earlier
 * enrolment's of the same id) cannot be told apart from another tenant's, so it keeps null, which
 * fails closed: only a client certificate (every tenant) reads it (docs/verifier.md gives the query
 * that hands such rows to a tenant). Migrations print nothing, hence the documented query.
 */
export async function up(knex: Knex): Promise<void> {
  for (const [table, nodes, time] of TABLES) {
    await knex.schema.alterTable(table, (t) => {
      t.string('tenant', 128).nullable();
    });
    await knex.raw(`update ?? as h set tenant = n.tenant from ?? as n where n.agent_id = h.agent_id and h.?? >= n.created_at`, [table, nodes, time]);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const [table] of TABLES) {
    await knex.schema.alterTable(table, (t) => {
      t.dropColumn('tenant');
    });
  }
}

const TABLES = [
  ['verifier_attestation_history', 'verifier_agents', 'attempted_at'],
  ['verifier_liveness_events', 'verifier_liveness', 'at'],
] as const;
