import type { Knex } from 'knex';

/**
 * A liveness enrolment's `metadata` (JSON object text), as a TPM enrolment's `verifier_agents.meta_data`:
 * the keylime driver writes the uuid of the node that enrolled the agent there and binds the agent to
 * that node (docs/keylime-driver.md). Enrolments made before carry `{}`: bound to no node, so the
 * driver leaves them alone until an admin re-enrols or deletes them.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_liveness', (table) => {
    table.text('meta_data').notNullable().defaultTo('{}');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_liveness', (table) => {
    table.dropColumn('meta_data');
  });
}
