import { expect } from 'chai';
import { IronlimeMigrationSource, migrateLatest, MIGRATIONS_TABLE } from '../../lib/db/migrate.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { forEachDatabase } from '../helpers/databases.js';

const LIVENESS_METADATA_MIGRATION = '20261204170000-verifier-liveness-metadata';
const NODE = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b';

forEachDatabase('verifier liveness metadata migration', (fixture) => {
  it('binds an enrolment made before it to the node naming its agent, and leaves the others bound to none', async function () {
    const { knex } = fixture.database;
    const before = MIGRATIONS.slice(0, MIGRATIONS.findIndex((migration) => migration.name === LIVENESS_METADATA_MIGRATION));
    await knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(before), tableName: MIGRATIONS_TABLE });
    await knex('nodes').insert({ uuid: NODE, name: 'named', attestation_interface: 'keylime', driver_info: JSON.stringify({ keylime_agent_uuid: 'named-agent' }) });
    const enrolment = { verifier_id: 'default', identity_mode: 'id-only', trust_level: 'id-only', ip: '127.0.0.1', port: 9002, mtls_cert: 'pem', proof_key: null };
    await knex('verifier_liveness').insert([
      { ...enrolment, agent_id: 'named-agent' },
      { ...enrolment, agent_id: 'unnamed-agent' },
    ]);
    await migrateLatest(knex);
    const rows = (await knex('verifier_liveness').select('agent_id', 'meta_data').orderBy('agent_id')) as { agent_id: string; meta_data: string }[];
    expect(rows.map((row) => [row.agent_id, JSON.parse(row.meta_data) as unknown])).to.deep.equal([
      ['named-agent', { node: NODE }],
      ['unnamed-agent', {}],
    ]);
  });
});
