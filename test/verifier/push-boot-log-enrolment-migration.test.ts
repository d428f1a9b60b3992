import { expect } from 'chai';
import type { Knex } from 'knex';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { IronlimeMigrationSource, migrateLatest, MIGRATIONS_TABLE } from '../../lib/db/migrate.js';
import { PushBootLogStore } from '../../lib/verifier/push/push-boot-log-store.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { forEachDatabase } from '../helpers/databases.js';
import { enrolledAgent } from './helpers/enrolled-agent.js';
import { BOOT_LOG_AGENT as AGENT, judged } from './helpers/push-boot-log-rows.js';

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
    const index = MIGRATIONS.findIndex((migration) => migration.name === ENROLMENT_MIGRATION);
    await knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, index)), tableName: MIGRATIONS_TABLE });
    // Up to this migration and back only: the later ones would be in its batch.
    const through = { migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, index + 1)), tableName: MIGRATIONS_TABLE };
    await seedVerifierAgents(knex, 2, 0);
    await knex('verifier_push_boot_logs').insert({ ...LOG, agent_id: 'agent-000001', attestation_index: 3 });
    expect(((await knex.migrate.latest(through)) as [number, string[]])[1]).to.deep.equal([ENROLMENT_MIGRATION]);

    const numbered = await enrolments(knex);
    expect(new Set(Object.values(numbered)).size, 'one number per enrolment').to.equal(2);
    expect(await bootLogs(knex)).to.deep.equal([{ agent_id: 'agent-000001', enrolment: numbered['agent-000001'] }]);

    // A late write of an older enrolment, as the race in push-boot-log-enrolment.test.ts leaves it.
    await knex('verifier_push_boot_logs').insert({ ...LOG, agent_id: 'agent-000002', enrolment: 0, attestation_index: 9 });
    expect(((await knex.migrate.rollback(through, false)) as [number, string[]])[1]).to.deep.equal([ENROLMENT_MIGRATION]);
    expect((await knex('verifier_push_boot_logs').select('agent_id')).map((row: { agent_id: string }) => row.agent_id)).to.deep.equal(['agent-000001']);
    expect(await knex.schema.hasColumn('verifier_agents', 'enrolment')).to.equal(false);
    await migrateLatest(knex);
  });
});

/**
 * The statements of a verifier process from before the migration (main's `PushBootLogStore.write` and
 * `forgetPushBootLogs`, their SQL as it was: no enrolment named), run during a rolling upgrade
 * against the migrated schema: the trigger gives their rows the agent's current enrolment.
 */
const OLDER_WRITE = `
insert into verifier_push_boot_logs (agent_id, attestation_index, boot_time, hash_alg, mask, context_sha256, event_log)
select :agentId, :index, :bootTime, :hashAlg, :mask, :contextSha256, :eventLog
where exists (select 1 from verifier_push_attestations a where a.agent_id = :agentId and a.index = :index and a.evaluation = 'pass')
  and not exists (select 1 from verifier_push_attestations a where a.agent_id = :agentId and a.index > :index and a.evaluation = 'fail')
on conflict (agent_id) do update set
  attestation_index = excluded.attestation_index, boot_time = excluded.boot_time, hash_alg = excluded.hash_alg, mask = excluded.mask,
  context_sha256 = excluded.context_sha256, event_log = excluded.event_log, verified_at = now()
where verifier_push_boot_logs.attestation_index < excluded.attestation_index
  and (verifier_push_boot_logs.event_log is null
    or (verifier_push_boot_logs.boot_time, verifier_push_boot_logs.hash_alg, verifier_push_boot_logs.mask, verifier_push_boot_logs.context_sha256)
      is distinct from (excluded.boot_time, excluded.hash_alg, excluded.mask, excluded.context_sha256))
returning agent_id`;
const OLDER_FORGET = `
insert into verifier_push_boot_logs (agent_id, attestation_index)
select f.agent_id, coalesce((select max(a.index) from verifier_push_attestations a where a.agent_id = f.agent_id), -1)
from (select distinct e.agent_id from jsonb_array_elements_text(?::jsonb) as e(agent_id)) f
on conflict (agent_id) do update set
  attestation_index = greatest(verifier_push_boot_logs.attestation_index, excluded.attestation_index),
  boot_time = null, hash_alg = null, mask = null, context_sha256 = null, event_log = null, verified_at = now()
where verifier_push_boot_logs.event_log is not null or verifier_push_boot_logs.attestation_index < excluded.attestation_index`;

forEachDatabase(
  'push boot log enrolment: an older verifier process\'s statements',
  (fixture) => {
    it('a tombstone and a write that name no enrolment are stored with the agent\'s current enrolment', async function () {
      const { knex } = fixture.database;
      await seedVerifierAgents(knex, 1, 0);
      const agent = await enrolledAgent(knex, AGENT);
      await judged(knex, 0, 'fail');
      await knex.transaction((trx) => trx.raw(OLDER_FORGET, [JSON.stringify([AGENT])]));
      expect(await bootLogs(knex), 'the failure\'s tombstone').to.deep.equal([{ agent_id: AGENT, enrolment: agent.enrolment }]);
      await knex('verifier_push_boot_logs').delete();
      await judged(knex, 1, 'pass');
      const written = (await knex.raw(OLDER_WRITE, { agentId: AGENT, index: 1, bootTime: LOG.boot_time, hashAlg: LOG.hash_alg, mask: LOG.mask, contextSha256: LOG.context_sha256, eventLog: LOG.event_log })) as { rows: unknown[] };
      expect(written.rows, 'the log').to.have.length(1);
      expect(await new PushBootLogStore(knex).read(agent)).to.deep.include({ bootTime: LOG.boot_time, eventLog: LOG.event_log });
    });
  },
  { migrate: true },
);
