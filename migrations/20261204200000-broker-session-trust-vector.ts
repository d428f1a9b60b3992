import type { Knex } from 'knex';

/**
 * Broker: `broker_sessions.trust_vector`, the trustworthiness vector (JSON text) a session's evidence
 * was appraised to, so a cookie's resource request meets a resource's `required_claims` as a token does.
 * Sessions attested before this column have none and are refused any resource with required claims
 * (they live 5 minutes).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('broker_sessions', (table) => {
    table.text('trust_vector').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('broker_sessions', (table) => {
    table.dropColumn('trust_vector');
  });
}
