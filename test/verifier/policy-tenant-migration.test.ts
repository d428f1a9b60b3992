import { expect } from 'chai';
import type { Knex } from 'knex';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { IronlimeMigrationSource, MIGRATIONS_TABLE } from '../../lib/db/migrate.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { forEachDatabase } from '../helpers/databases.js';

const POLICY_TENANT_MIGRATION = '20261205140000-verifier-policy-tenant';

/** docs/dashboard.md "Policies stored before the migration": the agents attested with another tenant's policy. */
const SHARED_POLICY_QUERY = `
select 'runtime' as kind, p.name, p.tenant as policy_tenant, a.tenant as agent_tenant, a.agent_id
  from verifier_agents a join verifier_runtime_policies p on p.name = a.runtime_policy_name where a.tenant <> p.tenant
union all
select 'measured boot', p.name, p.tenant, a.tenant, a.agent_id
  from verifier_agents a join verifier_mb_policies p on p.name = a.mb_policy_name where a.tenant <> p.tenant`;

async function tenantsOf(knex: Knex, table: string): Promise<Record<string, string>> {
  const rows = (await knex(table).select('name', 'tenant').orderBy('name')) as { name: string; tenant: string }[];
  return Object.fromEntries(rows.map((row) => [row.name, row.tenant]));
}

/**
 * Before policies had tenants any tenant's token could create them and enrol with them; giving them
 * all to `default` would let a `default` operator loosen the policy only tenant `blue`'s agents use.
 */
forEachDatabase('named policy tenant migration', (fixture) => {
  it("gives a policy used by one tenant's agents (pull or push) to that tenant, and keeps shared and unused ones in default, across down and up", async function () {
    const { knex } = fixture.database;
    const index = MIGRATIONS.findIndex((migration) => migration.name === POLICY_TENANT_MIGRATION);
    expect(index, 'the migration is registered').to.be.greaterThan(0);
    await knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, index)), tableName: MIGRATIONS_TABLE });
    // Up to this migration and no further: later ones must not run (nor be undone) with it.
    const throughThis = { migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, index + 1)), tableName: MIGRATIONS_TABLE };
    const up = async (): Promise<string[]> => ((await knex.migrate.latest(throughThis)) as [number, string[]])[1];
    const down = async (): Promise<string[]> => ((await knex.migrate.rollback(throughThis, false)) as [number, string[]])[1];
    // Odd agent-00000N are `default`'s, even ones `blue`'s.
    await seedVerifierAgents(knex, 8, 1);
    const runtime = (name: string): Record<string, unknown> => ({ name, runtime_policy: '{}', checksum: '0'.repeat(64), generator: 3 });
    await knex('verifier_runtime_policies').insert(['blue-only', 'default-only', 'shared', 'unused', 'agent-000004'].map(runtime));
    await knex('verifier_mb_policies').insert(['blue-boot', 'shared-boot', 'unused-boot'].map((name) => ({ name, mb_policy: '{}' })));
    const use = (agentId: string, columns: Record<string, string>): Promise<number> => knex('verifier_agents').update(columns).where({ agent_id: agentId });
    await use('agent-000001', { runtime_policy_name: 'default-only', mb_policy_name: 'shared-boot' });
    await use('agent-000002', { runtime_policy_name: 'blue-only', mb_policy_name: 'blue-boot', attestation_mode: 'push' });
    await use('agent-000006', { runtime_policy_name: 'blue-only', mb_policy_name: 'shared-boot' });
    await use('agent-000003', { runtime_policy_name: 'shared' });
    await use('agent-000005', { runtime_policy_name: 'default-only' });
    // Keylime's inline policy, stored under the agent id.
    await use('agent-000004', { runtime_policy_name: 'agent-000004' });
    await use('agent-000008', { runtime_policy_name: 'shared' });

    const expected = {
      runtime: { 'agent-000004': 'blue', 'blue-only': 'blue', 'default-only': 'default', shared: 'default', unused: 'default' },
      mb: { 'blue-boot': 'blue', 'shared-boot': 'default', 'unused-boot': 'default' },
    };
    for (let round = 0; round < 2; round += 1) {
      expect(await up()).to.deep.equal([POLICY_TENANT_MIGRATION]);
      expect(await tenantsOf(knex, 'verifier_runtime_policies')).to.deep.equal(expected.runtime);
      expect(await tenantsOf(knex, 'verifier_mb_policies')).to.deep.equal(expected.mb);
      const shared = ((await knex.raw(SHARED_POLICY_QUERY)).rows as { kind: string; name: string; agent_id: string }[]).map((r) => `${r.kind} ${r.name} ${r.agent_id}`);
      expect(shared.sort()).to.deep.equal(['measured boot shared-boot agent-000006', 'runtime shared agent-000008']);
      expect(await down()).to.deep.equal([POLICY_TENANT_MIGRATION]);
      expect(await knex.schema.hasColumn('verifier_runtime_policies', 'tenant')).to.equal(false);
    }
  });
});
