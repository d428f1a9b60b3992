import type { Knex } from 'knex';

/**
 * Every change of a liveness-checked node's status (pending → alive → unreachable → failed, and back
 * after a re-enrolment), with the reason the engine gave, so the dashboard's node timeline shows when a
 * node without a TPM stopped answering or failed its proof (docs/dashboard.md). Written in the same
 * transaction as the new status; kept when the node is deleted, like the attestation history.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('verifier_liveness_events', (table) => {
    table.bigIncrements('id');
    table.string('agent_id', 80).notNullable();
    table.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.string('from_status', 16).notNullable();
    table.string('to_status', 16).notNullable();
    table.text('reason').nullable();
    table.index(['agent_id', 'id'], 'verifier_liveness_events_agent_idx');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('verifier_liveness_events');
}
