import type { Knex } from 'knex';

/**
 * An index for the registrar's count of one identity mode's records (`maxAgentsPerNonTpmMode`,
 * lib/registrar/registrar-agent-repository.ts): `identity_mode` first, so the count reads only that
 * mode's entries, never the `tpm` fleet; `active` and `updated_at` after it, so the "not expired" test
 * is answered from the index too.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('create index if not exists registrar_agents_mode_idx on registrar_agents (identity_mode, active, updated_at)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index if exists registrar_agents_mode_idx');
}
