import type { Knex } from 'knex';

/**
 * The registrar's agent table, the counterpart of Keylime's `registrarmain` (model `RegistrarAgent`,
 * `keylime/models/registrar/registrar_agent.py`). Binary TPM structures are kept as canonical base64
 * text, exactly as they travel on the wire. The IAK/IDevID and legacy `virtual`/`provider_keys`
 * columns are left out: this registrar does not accept those fields.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('registrar_agents', (table) => {
    // Keylime: String(80); ids are restricted to [\w.-]+ by the service before they reach the table.
    table.string('agent_id', 80).primary();
    table.text('ek_tpm').notNullable();
    // Base64 DER of the EK certificate itself (not the chain), or null when the agent sent none.
    table.text('ekcert').nullable();
    table.text('aik_tpm').notNullable();
    // base64 of the 32-character activation credential: the HMAC key for `auth_tag` (spec §1.4).
    table.text('activation_key').notNullable();
    table.boolean('active').notNullable().defaultTo(false);
    // An IPv4/IPv6 address or a DNS name (Keylime's String(15) only fits IPv4).
    table.string('ip', 253).nullable();
    table.integer('port').nullable();
    // PEM of the agent's HTTPS server certificate, or the literal "disabled".
    table.text('mtls_cert').nullable();
    table.integer('regcount').notNullable().defaultTo(0);
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('registrar_agents');
}
