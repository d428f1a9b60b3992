import type { Knex } from 'knex';

/**
 * Broker (issue 14):
 * - `broker_nodes.digest`: SHA-256 of the node's AK and policy texts, written with them, so an attest
 *   reads a short digest to find the node's compiled policies instead of re-reading and re-hashing the
 *   policy texts (null for rows written before: those are hashed as before).
 * - `broker_revocations.reinstated_at`: a reinstatement keeps the row and records when, so sessions and
 *   tokens issued before it stay refused (deleting the row re-enabled every token issued before the
 *   revocation that had not yet expired).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('broker_nodes', (table) => {
    table.string('digest', 64).nullable();
  });
  await knex.schema.alterTable('broker_revocations', (table) => {
    // Unix milliseconds; null while the revocation is in force.
    table.bigInteger('reinstated_at').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('broker_revocations', (table) => {
    table.dropColumn('reinstated_at');
  });
  await knex.schema.alterTable('broker_nodes', (table) => {
    table.dropColumn('digest');
  });
}
