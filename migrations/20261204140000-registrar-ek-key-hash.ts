import type { Knex } from 'knex';
import { ekKeyHashOfStored } from '../lib/registrar/ek-key-hash.js';

/**
 * `registrar_agents.ek_key_hash`: sha256 of the EK public key (lib/registrar/ek-key-hash.ts), indexed,
 * which the per-EK limit counts instead of the `ek_tpm` text (one key in many TPM2B_PUBLIC encodings is
 * one EK). Existing rows are filled in from their `ek_tpm`; a row whose EK no longer parses keeps null
 * and is not counted (it was checked when registered, so there should be none).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('registrar_agents', (table) => {
    table.string('ek_key_hash', 64).nullable();
    table.index(['ek_key_hash'], 'registrar_agents_ek_key_hash_idx');
  });
  const rows: { agent_id: string; ek_tpm: string }[] = await knex('registrar_agents').select('agent_id', 'ek_tpm').whereNotNull('ek_tpm');
  for (const row of rows) {
    let hash: string | null = null;
    try {
      hash = ekKeyHashOfStored(row.ek_tpm);
    } catch {
      hash = null;
    }
    await knex('registrar_agents').where({ agent_id: row.agent_id }).update({ ek_key_hash: hash });
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('registrar_agents', (table) => {
    table.dropIndex(['ek_key_hash'], 'registrar_agents_ek_key_hash_idx');
    table.dropColumn('ek_key_hash');
  });
}
