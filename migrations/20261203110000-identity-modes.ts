import type { Knex } from 'knex';

/**
 * Machines without a TPM (issue 15, docs/identity.md):
 * - `registrar_agents` may hold agents without EK and AK (`id-secret`, `id-only`): `ek_tpm` and
 *   `aik_tpm` become nullable; `identity_mode` is how the agent registered and `trust_level` what the
 *   registrar granted (rows stored before this migration were TPM registrations under the registrar's
 *   EK check, so they keep `tpm` / `hardware-tpm`); `host_id_hash` is sha256 of the host id (indexed:
 *   a host id registered with a stronger level refuses a weaker one under any agent id);
 *   `host_proof_key` the hex HMAC the `id-secret` host derived from its secret (never the secret);
 *   `mode_change_to` an admin's permission for the next registration to use another mode;
 *   `flagged_reason` / `flagged_at` the last refused downgrade.
 * - `nodes` shows the trust level the gate last saw, and the lower level an operator accepted, with
 *   when and why.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('registrar_agents', (table) => {
    table.text('ek_tpm').nullable().alter();
    table.text('aik_tpm').nullable().alter();
    table.string('identity_mode', 16).notNullable().defaultTo('tpm');
    table.string('trust_level', 16).notNullable().defaultTo('hardware-tpm');
    table.string('host_id_hash', 64).nullable();
    table.string('host_proof_key', 64).nullable();
    table.string('mode_change_to', 16).nullable();
    table.text('flagged_reason').nullable();
    table.timestamp('flagged_at', { useTz: true }).nullable();
    table.index(['host_id_hash'], 'registrar_agents_host_id_hash_idx');
  });
  await knex.schema.alterTable('nodes', (table) => {
    table.string('trust_level', 16).nullable();
    table.string('accepted_trust_level', 16).nullable();
    table.text('accepted_trust_level_note').nullable();
    table.timestamp('accepted_trust_level_at', { useTz: true }).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('nodes', (table) => {
    table.dropColumn('accepted_trust_level_at');
    table.dropColumn('accepted_trust_level_note');
    table.dropColumn('accepted_trust_level');
    table.dropColumn('trust_level');
  });
  await knex('registrar_agents').whereNull('ek_tpm').orWhereNull('aik_tpm').delete();
  await knex.schema.alterTable('registrar_agents', (table) => {
    table.dropIndex(['host_id_hash'], 'registrar_agents_host_id_hash_idx');
    table.dropColumn('flagged_at');
    table.dropColumn('flagged_reason');
    table.dropColumn('mode_change_to');
    table.dropColumn('host_proof_key');
    table.dropColumn('host_id_hash');
    table.dropColumn('trust_level');
    table.dropColumn('identity_mode');
    table.text('ek_tpm').notNullable().alter();
    table.text('aik_tpm').notNullable().alter();
  });
}
