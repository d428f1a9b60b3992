import type { Knex } from 'knex';

/**
 * A liveness enrolment's `metadata` (JSON object text), as a TPM enrolment's `verifier_agents.meta_data`:
 * the keylime driver writes the uuid of the node that enrolled the agent there and binds the agent to
 * that node (docs/keylime-driver.md). An enrolment made before is bound to the node whose `driver_info`
 * names its agent when the orchestrator's `nodes` live in this database (one node at most: the unique
 * index of 20261204160000), so an upgrade does not turn every no-TPM node untrusted at once; any other
 * carries `{}`, bound to no node, and the driver leaves it alone until an admin re-enrols or deletes it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_liveness', (table) => {
    table.text('meta_data').notNullable().defaultTo('{}');
  });
  await knex.raw(`
    UPDATE verifier_liveness l SET meta_data = jsonb_build_object('node', n.uuid::text)::text
    FROM nodes n
    WHERE n.driver_info->>'keylime_agent_uuid' = l.agent_id`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_liveness', (table) => {
    table.dropColumn('meta_data');
  });
}
