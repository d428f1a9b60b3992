import type { Knex } from 'knex';

/**
 * Broker: `broker_sessions.ak_tpm`, the AK (base64 TPM2B_PUBLIC) a session attested with, so a cookie's
 * resource request is refused once the node is enrolled again with another AK, as a token is. Sessions
 * attested before this column have none and are refused for a node with an AK (they live 5 minutes).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('broker_sessions', (table) => {
    table.text('ak_tpm').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('broker_sessions', (table) => {
    table.dropColumn('ak_tpm');
  });
}
