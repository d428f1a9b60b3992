import type { Knex } from 'knex';

/**
 * Agents belong to a tenant (issue 16): a bearer token of tenant A sees only tenant A's agents.
 * Agents enrolled before tenants existed, or with a client certificate, are in `default`. The
 * (tenant, agent_id) index serves the dashboard's paged node table; the history's time index serves
 * "attestations per minute" and "failures in the last hour" without scanning every round.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_agents', (table) => {
    table.string('tenant', 128).notNullable().defaultTo('default');
    table.index(['tenant', 'agent_id'], 'verifier_agents_tenant_idx');
  });
  await knex.schema.alterTable('verifier_attestation_history', (table) => {
    table.index(['attempted_at'], 'verifier_history_time_idx');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_attestation_history', (table) => {
    table.dropIndex(['attempted_at'], 'verifier_history_time_idx');
  });
  await knex.schema.alterTable('verifier_agents', (table) => {
    table.dropIndex(['tenant', 'agent_id'], 'verifier_agents_tenant_idx');
    table.dropColumn('tenant');
  });
}
