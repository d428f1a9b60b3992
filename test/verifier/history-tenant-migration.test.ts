import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { IronlimeMigrationSource, MIGRATIONS_TABLE } from '../../lib/db/migrate.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { forEachDatabase, openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { backendPid, waitForLockWaiters } from '../helpers/lock-waits.js';

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

/**
 * Verifiers of the previous version keep writing rounds while the migration runs (a rolling
 * upgrade): filling the existing rows must not hold the history table, or every verdict waits for
 * the whole fill (tens of millions of rows). PostgreSQL only: PGlite has one connection.
 */
describe('history tenant migration beside running verifiers [postgres]', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase | undefined;

  after(async function () {
    await opened?.dispose();
  });

  it('stores a verdict written while the fill waits', async function () {
    opened = await openTestSchema();
    const { knex } = opened.database;
    const index = MIGRATIONS.findIndex((migration) => migration.name === HISTORY_TENANT_MIGRATION);
    await knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, index)), tableName: MIGRATIONS_TABLE });
    await seedVerifierAgents(knex, 2, 2);
    // The fill reads the agents: holding their table keeps the migration in its fill.
    const holder = await knex.transaction();
    await holder.raw('lock table verifier_agents in access exclusive mode');
    const migrated = knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, index + 1)), tableName: MIGRATIONS_TABLE });
    try {
      await waitForLockWaiters(knex, await backendPid(holder), 1);
      // An old verifier's round (no tenant column known to it), bounded: the table must not be locked.
      await knex.transaction(async (trx) => {
        await trx.raw("set local lock_timeout = '2s'");
        await trx('verifier_attestation_history').insert({ agent_id: 'agent-000001', verifier_id: 'default', outcome: 'pass', operational_state: 3, attestation_count: 9 });
      });
    } finally {
      await holder.commit();
      await migrated;
    }
    const rows = (await knex('verifier_attestation_history').where({ agent_id: 'agent-000001' }).select('attestation_count', 'tenant').orderBy('id')) as { attestation_count: number; tenant: string | null }[];
    // Written before the fill reached its ids, the old verifier's row is filled too (one written after it keeps null: docs/verifier.md).
    expect(rows.map((row) => `${row.attestation_count} ${row.tenant}`)).to.deep.equal(['0 default', '1 null', '9 default']);
  });
});
