import { expect } from 'chai';
import { IronlimeMigrationSource, MIGRATIONS_TABLE } from '../../lib/db/migrate.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { forEachDatabase } from '../helpers/databases.js';

const LIVENESS_ENROLMENT_MIGRATION = '20261207130000-verifier-liveness-enrolment';

forEachDatabase('verifier liveness enrolment migration', (fixture) => {
  it('gives every node enrolled before it an enrolment id of its own', async function () {
    const { knex } = fixture.database;
    const own = MIGRATIONS.findIndex((migration) => migration.name === LIVENESS_ENROLMENT_MIGRATION);
    await knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, own)), tableName: MIGRATIONS_TABLE });
    const enrolment = { verifier_id: 'default', identity_mode: 'id-only', trust_level: 'id-only', ip: '127.0.0.1', port: 9002, mtls_cert: 'pem', proof_key: null };
    await knex('verifier_liveness').insert([
      { ...enrolment, agent_id: 'first-node' },
      { ...enrolment, agent_id: 'second-node' },
    ]);
    await knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, own + 1)), tableName: MIGRATIONS_TABLE });
    const rows = (await knex('verifier_liveness').select('enrolment')) as { enrolment: string }[];
    expect(rows).to.have.length(2);
    expect(rows.every((row) => /^[0-9a-f-]{36}$/.test(row.enrolment))).to.equal(true);
    expect(rows[0]?.enrolment).to.not.equal(rows[1]?.enrolment);
  });
});
