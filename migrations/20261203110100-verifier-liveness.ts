import type { Knex } from 'knex';

/**
 * Nodes without a TPM that a verifier checks for liveness (issue 15 item 3, docs/identity.md): where
 * to reach the agent (pinned `mtls_cert`), its mode and trust level as the registrar gave them, the
 * `id-secret` proof key (hex), and the last decision of `lib/attestation/liveness-decision.ts`.
 * Kept apart from `verifier_agents`: there is no AK, quote or policy for such a node.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('verifier_liveness', (table) => {
    table.string('agent_id', 80).primary();
    table.string('verifier_id', 128).notNullable();
    table.string('identity_mode', 16).notNullable();
    table.string('trust_level', 16).notNullable();
    table.string('ip', 253).notNullable();
    table.integer('port').notNullable();
    table.text('mtls_cert').notNullable();
    table.string('proof_key', 64).nullable();
    table.string('status', 16).notNullable().defaultTo('pending');
    table.integer('misses').notNullable().defaultTo(0);
    table.timestamp('last_seen_at', { useTz: true }).nullable();
    table.text('last_failure').nullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.index(['verifier_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('verifier_liveness');
}
