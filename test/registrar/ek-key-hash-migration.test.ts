import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { IronlimeMigrationSource, migrateLatest, MIGRATIONS_TABLE } from '../../lib/db/migrate.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { forEachDatabase } from '../helpers/databases.js';
import { generateTestKey } from './helpers/test-tpm-identity.js';

const EK_KEY_HASH_MIGRATION = '20261204140000-registrar-ek-key-hash';

forEachDatabase('registrar ek_key_hash migration', (fixture) => {
  it('fills ek_key_hash of the rows stored before it from their EK, and leaves agents without a TPM null', async function () {
    const { knex } = fixture.database;
    const before = MIGRATIONS.slice(0, MIGRATIONS.findIndex((migration) => migration.name === EK_KEY_HASH_MIGRATION));
    await knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(before), tableName: MIGRATIONS_TABLE });
    const ek = generateTestKey('ecc', 'ek');
    const ekTpm = Buffer.from(ek.tpm2bPublic).toString('base64');
    await knex('registrar_agents').insert([
      { agent_id: 'with-tpm', ek_tpm: ekTpm, aik_tpm: 'AAAA', activation_key: '' },
      { agent_id: 'without-tpm', ek_tpm: null, aik_tpm: null, activation_key: '', identity_mode: 'id-only', trust_level: 'id-only' },
    ]);
    await migrateLatest(knex);
    const rows = (await knex('registrar_agents').select('agent_id', 'ek_key_hash').orderBy('agent_id')) as { agent_id: string; ek_key_hash: string | null }[];
    const spki = ek.publicKey.export({ type: 'spki', format: 'der' });
    expect(rows).to.deep.equal([
      { agent_id: 'with-tpm', ek_key_hash: createHash('sha256').update(spki).digest('hex') },
      { agent_id: 'without-tpm', ek_key_hash: null },
    ]);
  });

  it('refuses, from then on, a record with an EK but no ek_key_hash (it would escape the per-EK limit)', async function () {
    const { knex } = fixture.database;
    await migrateLatest(knex);
    const ekTpm = Buffer.from(generateTestKey('ecc', 'ek').tpm2bPublic).toString('base64');
    const refused = await knex('registrar_agents')
      .insert({ agent_id: 'no-hash', ek_tpm: ekTpm, aik_tpm: 'AAAA', activation_key: '' })
      .then(() => undefined, (error: unknown) => error as { code?: string });
    expect(refused?.code).to.equal('23514');
    await knex('registrar_agents').insert([
      { agent_id: 'hashed', ek_tpm: ekTpm, ek_key_hash: 'a'.repeat(64), aik_tpm: 'AAAA', activation_key: '' },
      { agent_id: 'no-tpm', ek_tpm: null, aik_tpm: null, activation_key: '', identity_mode: 'id-only', trust_level: 'id-only' },
    ]);
    const stored = (await knex('registrar_agents').whereIn('agent_id', ['no-hash', 'hashed', 'no-tpm']).pluck('agent_id').orderBy('agent_id')) as string[];
    expect(stored).to.deep.equal(['hashed', 'no-tpm']);
  });
});
