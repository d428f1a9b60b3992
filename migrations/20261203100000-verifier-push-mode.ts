import type { Knex } from 'knex';

/**
 * The push model (issue 13, keylime-protocol §10):
 * - `verifier_agents.attestation_mode`: `pull` (the verifier polls the agent) or `push` (the agent
 *   attests itself), chosen at enrolment; the pull loop claims only `pull` rows;
 * - `verifier_push_sessions`: proof-of-possession sessions — the challenge handed out and, once the
 *   agent proved its AK, the bearer token as a salted PBKDF2 hash only (never the token);
 * - `verifier_push_attestations`: one row per capabilities POST (index counting from 0 per agent)
 *   with what was asked for, and its stage and outcome. The verdict itself goes to the agent row and
 *   `verifier_attestation_history` through the same round writer as pull rounds.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_agents', (table) => {
    table.string('attestation_mode', 8).notNullable().defaultTo('pull');
  });
  await knex.raw("CREATE INDEX verifier_agents_push_idx ON verifier_agents (verifier_id, last_received_quote) WHERE attestation_mode = 'push'");
  await knex.schema.createTable('verifier_push_sessions', (table) => {
    table.uuid('session_id').primary();
    table.string('agent_id', 80).notNullable();
    // base64 of the 16 random challenge bytes.
    table.string('challenge', 32).notNullable();
    table.timestamp('challenge_expires_at', { useTz: true }).notNullable();
    // PBKDF2-HMAC-SHA256 (600 000 iterations) of the token's secret, with its 16-byte salt (base64).
    table.string('token_salt', 32).nullable();
    table.string('token_hash', 64).nullable();
    table.timestamp('token_expires_at', { useTz: true }).nullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.index(['agent_id'], 'verifier_push_sessions_agent_idx');
  });
  await knex.schema.createTable('verifier_push_attestations', (table) => {
    table.string('agent_id', 80).notNullable();
    table.integer('index').notNullable();
    // awaiting_evidence | evaluating_evidence | verification_complete
    table.string('stage', 24).notNullable();
    // pass | fail, once complete
    table.string('evaluation', 8).nullable();
    table.string('failure_reason', 32).nullable();
    table.string('challenge', 32).notNullable();
    // The PushChoice (lib/attestation/push-decision.ts) and the capabilities' system_info.
    table.jsonb('choice').notNullable();
    table.jsonb('system_info').notNullable();
    table.timestamp('capabilities_received_at', { useTz: true }).notNullable();
    table.timestamp('challenges_expire_at', { useTz: true }).notNullable();
    table.timestamp('evidence_received_at', { useTz: true }).nullable();
    table.timestamp('verification_completed_at', { useTz: true }).nullable();
    table.primary(['agent_id', 'index']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('verifier_push_attestations');
  await knex.schema.dropTable('verifier_push_sessions');
  await knex.raw('DROP INDEX IF EXISTS verifier_agents_push_idx');
  await knex.schema.alterTable('verifier_agents', (table) => {
    table.dropColumn('attestation_mode');
  });
}
