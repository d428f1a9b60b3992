import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { IronlimeMigrationSource, MIGRATIONS_TABLE } from '../../lib/db/migrate.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { forEachDatabase } from '../helpers/databases.js';

const HISTORY_TENANT_MIGRATION = '20261206110000-verifier-history-tenant';

/**
 * Rows written before history had a tenant: those of the node enrolled now under the id, since its
 * enrolment, become its tenant's; a deleted node's, or an earlier enrolment's of the id, cannot be
 * told from another tenant's and keep null (fail closed: only a client certificate reads them).
 */
forEachDatabase('history tenant migration', (fixture) => {
  it("gives rows written since the node's enrolment its tenant and leaves older and deleted nodes' rows without one, across down and up", async function () {
    const { knex } = fixture.database;
    const index = MIGRATIONS.findIndex((migration) => migration.name === HISTORY_TENANT_MIGRATION);
    expect(index, 'the migration is registered').to.be.greaterThan(0);
    await knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, index)), tableName: MIGRATIONS_TABLE });
    const throughThis = { migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, index + 1)), tableName: MIGRATIONS_TABLE };
    const up = async (): Promise<string[]> => ((await knex.migrate.latest(throughThis)) as [number, string[]])[1];
    const down = async (): Promise<string[]> => ((await knex.migrate.rollback(throughThis, false)) as [number, string[]])[1];
    // agent-000001 is `default`'s, agent-000002 `blue`'s; per agent a round now and one 20 s before its enrolment.
    await seedVerifierAgents(knex, 2, 2);
    await knex('verifier_attestation_history').insert({ agent_id: 'deleted-agent', verifier_id: 'default', outcome: 'pass', operational_state: 3, attestation_count: 1 });
    await knex('verifier_liveness').insert({ agent_id: 'live-1', tenant: 'blue', verifier_id: 'default', identity_mode: 'id-only', trust_level: 'id-only', ip: '127.0.0.1', port: 9, mtls_cert: 'pem' });
    const event = { from_status: 'pending', to_status: 'alive' };
    await knex('verifier_liveness_events').insert([
      { ...event, agent_id: 'live-1' },
      { ...event, agent_id: 'live-1', at: knex.raw("now() - interval '1 hour'") },
      { ...event, agent_id: 'deleted-node' },
    ]);

    for (let round = 0; round < 2; round += 1) {
      expect(await up()).to.deep.equal([HISTORY_TENANT_MIGRATION]);
      const history = (await knex('verifier_attestation_history').select('agent_id', 'attestation_count', 'tenant').orderBy(['agent_id', 'attestation_count'])) as { agent_id: string; attestation_count: number; tenant: string | null }[];
      expect(history.map((row) => `${row.agent_id}/${row.attestation_count} ${row.tenant}`)).to.deep.equal([
        'agent-000001/0 default',
        'agent-000001/1 null',
        'agent-000002/0 blue',
        'agent-000002/1 null',
        'deleted-agent/1 null',
      ]);
      const events = (await knex('verifier_liveness_events').select('agent_id', 'tenant').orderBy('id')) as { agent_id: string; tenant: string | null }[];
      expect(events.map((row) => `${row.agent_id} ${row.tenant}`)).to.deep.equal(['live-1 blue', 'live-1 null', 'deleted-node null']);
      expect(await down()).to.deep.equal([HISTORY_TENANT_MIGRATION]);
      expect(await knex.schema.hasColumn('verifier_attestation_history', 'tenant')).to.equal(false);
      expect(await knex.schema.hasColumn('verifier_liveness_events', 'tenant')).to.equal(false);
    }
  });
});
