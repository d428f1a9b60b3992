import { expect } from 'chai';
import type { Knex } from 'knex';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { IronlimeMigrationSource, migrateLatest, migrateRollbackLastBatch, MIGRATIONS_TABLE } from '../../lib/db/migrate.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { forEachDatabase } from '../helpers/databases.js';

const ENROLMENT_MIGRATION = '20261205060000-verifier-push-boot-log-enrolment';
const LOG = { boot_time: 1_700_000_000, hash_alg: 'sha256', mask: '0xffff', context_sha256: 'a'.repeat(64), event_log: 'TE9H' };

async function enrolments(knex: Knex): Promise<Record<string, string>> {
  const rows = (await knex('verifier_agents').select('agent_id', knex.raw('enrolment::text as enrolment')).orderBy('agent_id')) as { agent_id: string; enrolment: string }[];
  return Object.fromEntries(rows.map((row) => [row.agent_id, row.enrolment]));
}

async function bootLogs(knex: Knex): Promise<{ agent_id: string; enrolment: string }[]> {
  return (await knex('verifier_push_boot_logs').select('agent_id', knex.raw('enrolment::text as enrolment')).orderBy('agent_id')) as { agent_id: string; enrolment: string }[];
}

forEachDatabase('push boot log enrolment migration', (fixture) => {
  it('numbers the enrolled agents apart, gives stored rows their agent\'s enrolment, and on the way down drops a row of another enrolment', async function () {
    const { knex } = fixture.database;
    const before = MIGRATIONS.slice(0, MIGRATIONS.findIndex((migration) => migration.name === ENROLMENT_MIGRATION));
    await knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(before), tableName: MIGRATIONS_TABLE });
    await seedVerifierAgents(knex, 2, 0);
    await knex('verifier_push_boot_logs').insert({ ...LOG, agent_id: 'agent-000001', attestation_index: 3 });
    expect(await migrateLatest(knex)).to.deep.equal([ENROLMENT_MIGRATION]);

    const numbered = await enrolments(knex);
    expect(new Set(Object.values(numbered)).size, 'one number per enrolment').to.equal(2);
    expect(await bootLogs(knex)).to.deep.equal([{ agent_id: 'agent-000001', enrolment: numbered['agent-000001'] }]);

    // A late write of an older enrolment, as the race in push-boot-log-enrolment.test.ts leaves it.
    await knex('verifier_push_boot_logs').insert({ ...LOG, agent_id: 'agent-000002', enrolment: 0, attestation_index: 9 });
    expect(await migrateRollbackLastBatch(knex)).to.deep.equal([ENROLMENT_MIGRATION]);
    expect((await knex('verifier_push_boot_logs').select('agent_id')).map((row: { agent_id: string }) => row.agent_id)).to.deep.equal(['agent-000001']);
    expect(await knex.schema.hasColumn('verifier_agents', 'enrolment')).to.equal(false);
    await migrateLatest(knex);
  });
});
