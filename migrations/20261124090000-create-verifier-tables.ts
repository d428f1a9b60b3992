import type { Knex } from 'knex';

/**
 * The verifier's tables, the counterparts of Keylime's `verifiermain`, `allowlists` and `mbpolicies`
 * (spec §11), plus an append-only history of every round. Everything a verifier needs to continue an
 * agent after a crash lives here (DESIGN "State lives in the database"): the enrolment, the
 * operational state, the incremental IMA state (next entry, running PCR 10, learnt keys), the last TPM
 * clock info, counters and times. `owner` + `lease_expires_at` let several verifier processes share
 * one PostgreSQL: a process polls only the agents it holds a live lease on.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('verifier_runtime_policies', (table) => {
    table.string('name', 255).primary();
    // The policy JSON text exactly as enrolled (after DSSE verification, the inner policy).
    table.text('runtime_policy').notNullable();
    // sha256 hex of `runtime_policy` (Keylime `checksum`).
    table.string('checksum', 64).notNullable();
    // `meta.generator` (0 Unknown … 3 LegacyAllowList); `has_runtime_policy` is generator > 1.
    table.integer('generator').notNullable();
    // Keylime keeps an optional tpm_policy beside the runtime policy; stored, never applied.
    table.text('tpm_policy').nullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('verifier_mb_policies', (table) => {
    table.string('name', 255).primary();
    // The refstate JSON text exactly as enrolled.
    table.text('mb_policy').notNullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('verifier_agents', (table) => {
    table.string('agent_id', 80).primary();
    // Enrolment (spec §4.1).
    table.text('v').nullable();
    table.string('ip', 253).nullable();
    table.integer('port').nullable();
    table.string('verifier_ip', 253).nullable();
    table.integer('verifier_port').nullable();
    table.text('tpm_policy').notNullable();
    table.string('runtime_policy_name', 255).nullable().references('name').inTable('verifier_runtime_policies');
    table.string('mb_policy_name', 255).nullable().references('name').inTable('verifier_mb_policies');
    table.text('ima_sign_verification_keys').notNullable().defaultTo('');
    table.text('meta_data').notNullable().defaultTo('{}');
    table.text('revocation_key').notNullable().defaultTo('');
    table.jsonb('accept_tpm_hash_algs').notNullable();
    table.jsonb('accept_tpm_encryption_algs').notNullable();
    table.jsonb('accept_tpm_signing_algs').notNullable();
    table.text('ak_tpm').notNullable();
    table.text('mtls_cert').nullable();
    table.string('supported_version', 16).notNullable();
    table.string('verifier_id', 80).notNullable();
    // Attestation state (spec §6.2 step 7; lib/attestation AgentAttestationState).
    table.integer('operational_state').notNullable();
    table.integer('attestation_count').notNullable().defaultTo(0);
    table.integer('severity_level').nullable();
    table.string('last_event_id', 255).nullable();
    table.timestamp('last_received_quote', { useTz: true }).nullable();
    table.timestamp('last_successful_attestation', { useTz: true }).nullable();
    table.timestamp('last_attempt_at', { useTz: true }).nullable();
    // {clock: decimal string, resetCount, restartCount, safe} of the last passing quote.
    table.jsonb('tpm_clockinfo').nullable();
    table.double('boottime').notNullable().defaultTo(0);
    table.integer('next_ima_ml_entry').notNullable().defaultTo(0);
    // Running PCR 10 after entries [0, next_ima_ml_entry): {sha1, sha256} lowercase hex.
    table.jsonb('ima_pcr10').notNullable();
    table.jsonb('learned_ima_keyrings').notNullable().defaultTo('{}');
    table.integer('ima_lag_entries').notNullable().defaultTo(0);
    // The agent's NK public key (PEM) from its last full reply: PCR 16 binds it, V is wrapped under it.
    table.text('agent_pubkey').nullable();
    table.string('hash_alg', 16).nullable();
    table.string('enc_alg', 16).nullable();
    table.string('sign_alg', 16).nullable();
    // Several processes on one database: who polls the agent, and until when that claim holds.
    table.string('owner', 128).nullable();
    table.timestamp('lease_expires_at', { useTz: true }).nullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.index(['verifier_id', 'operational_state'], 'verifier_agents_verifier_state_idx');
    table.index(['owner'], 'verifier_agents_owner_idx');
  });

  // Append-only: one row per round (pass, fail, unreachable retry), kept after the agent is deleted.
  await knex.schema.createTable('verifier_attestation_history', (table) => {
    table.bigIncrements('id').primary();
    table.string('agent_id', 80).notNullable();
    table.string('verifier_id', 80).notNullable();
    table.string('owner', 128).nullable();
    table.timestamp('attempted_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    // pass | fail | retry
    table.string('outcome', 8).notNullable();
    table.string('nonce', 64).nullable();
    // The `ima_ml_entry` the round asked for, and how many IMA lines came back.
    table.integer('ima_ml_entry').nullable();
    table.integer('ima_entries_received').nullable();
    table.integer('operational_state').notNullable();
    table.integer('attestation_count').notNullable();
    // [{event_id, severity_label, context, recoverable}]
    table.jsonb('failures').notNullable().defaultTo('[]');
    table.index(['agent_id', 'id'], 'verifier_history_agent_idx');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('verifier_attestation_history');
  await knex.schema.dropTable('verifier_agents');
  await knex.schema.dropTable('verifier_mb_policies');
  await knex.schema.dropTable('verifier_runtime_policies');
}
