import type { Knex } from 'knex';

/**
 * Registrar hardening (issue 11, items 3 and 6):
 * - `pending_*`: contact details (`ip`, `port`, `mtls_cert`) sent by a re-registration of an ACTIVE
 *   agent. They replace the current ones only when the agent proves again that its TPM holds the EK
 *   (a successful activation); until then the tenant keeps seeing the old, proven ones.
 *   `pending_contact` says whether the three columns hold a change (each may itself be null).
 * - an index on `ek_tpm` to count the agent ids registered with one EK (hash: equality only, and the
 *   base64 text of a TPM2B_PUBLIC can be long);
 * - a partial index on `updated_at` of never-activated rows, which expire.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('registrar_agents', (table) => {
    table.boolean('pending_contact').notNullable().defaultTo(false);
    table.string('pending_ip', 253).nullable();
    table.integer('pending_port').nullable();
    table.text('pending_mtls_cert').nullable();
  });
  await knex.raw('CREATE INDEX registrar_agents_ek_tpm_idx ON registrar_agents USING hash (ek_tpm)');
  await knex.raw('CREATE INDEX registrar_agents_inactive_idx ON registrar_agents (updated_at) WHERE NOT active');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS registrar_agents_inactive_idx');
  await knex.raw('DROP INDEX IF EXISTS registrar_agents_ek_tpm_idx');
  await knex.schema.alterTable('registrar_agents', (table) => {
    table.dropColumn('pending_mtls_cert');
    table.dropColumn('pending_port');
    table.dropColumn('pending_ip');
    table.dropColumn('pending_contact');
  });
}
