import type { Knex } from 'knex';

/**
 * Broker: `broker_applied_revocations`, the SHA-256 of every verifier revocation message a broker has
 * applied, per node. A message revokes only the first time it is seen, so a captured message sent again
 * (or a delivery retried) after an operator reinstated the node does not revoke it again, while any other
 * message does, whatever the verifier's and the broker's clocks say.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('broker_applied_revocations', (table) => {
    table.text('agent_id').notNullable();
    table.text('message_sha256').notNullable();
    table.bigInteger('applied_at').notNullable();
    table.primary(['agent_id', 'message_sha256']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('broker_applied_revocations');
}
