import type { Knex } from 'knex';

/**
 * Every record with an EK carries its `ek_key_hash`: the per-EK limit counts that column and
 * serialises on it, so a row written without it (by a registrar of an older version during a rolling
 * upgrade, or by a future insert path that forgets it) would escape the limit. `NOT VALID`: the rows
 * already stored are not re-checked (the previous migration filled them; one whose EK no longer parses
 * keeps null), every row inserted or updated from now on is.
 */
const CONSTRAINT = 'registrar_agents_ek_key_hash_with_ek';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE registrar_agents ADD CONSTRAINT ${CONSTRAINT} CHECK ((ek_tpm IS NULL) = (ek_key_hash IS NULL)) NOT VALID`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE registrar_agents DROP CONSTRAINT ${CONSTRAINT}`);
}
