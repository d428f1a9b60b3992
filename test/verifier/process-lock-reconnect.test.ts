import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { migrateLatest } from '../../lib/db/migrate.js';
import { PROCESS_LOCK_CLASS } from '../../lib/verifier/process-lock-sql.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';
import { serveFakeAgents } from './helpers/fake-agent-server.js';

/**
 * A live verifier whose process-lock session is terminated (`pg_terminate_backend`, as a database
 * restart or a network cut would end it) does not crash on the connection's `error` event: it takes
 * its lock again on a new session, beats that key, and keeps polling its agent. Released at close.
 */
describe('verifier: the process lock\'s connection cut while the process lives', function () {
  this.timeout(60_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let database: Database;
  let knex: Knex;
  let server: Server;
  let verifier: RunningVerifier | undefined;
  const fake = new FakeAgent();

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-process-lock-'));
    schema = await createTestSchema();
    database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: dir, searchPath: schema.name });
    knex = database.knex;
    await migrateLatest(knex);
    const agents = await serveFakeAgents(fake, 0x400);
    server = agents.server;
    const { port } = agents;
    const tls = { certPem: agents.certPem };
    await new VerifierAgentRepository(knex).insert(
      pullAgentEnrolment({ agentId: 'cut-1', port, tpmPolicy: '{"mask": "0x400"}', akTpm: fake.akTpm, mtlsCert: tls.certPem, supportedVersion: '2.2' }),
      initialAgentState(OperationalState.START),
      null,
      30,
    );
  });

  after(async function () {
    await verifier?.close();
    server?.close();
    await database?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The backend holding the lock of `key`, if any. */
  async function holder(key: number): Promise<number | undefined> {
    const result = (await knex.raw(
      `select pid from pg_locks where locktype = 'advisory' and classid = ?::oid and objid = ?::oid and objsubid = 2 and granted`,
      [PROCESS_LOCK_CLASS, key],
    )) as { rows: { pid: number }[] };
    return result.rows[0]?.pid;
  }

  const beatKey = async (): Promise<number | null> =>
    ((await knex('verifier_processes').where({ owner: 'cut-verifier' }).first('lock_key')) as { lock_key: number | null } | undefined)?.lock_key ?? null;

  const attestations = async (): Promise<number> =>
    ((await knex('verifier_agents').where({ agent_id: 'cut-1' }).first('attestation_count')) as { attestation_count: number }).attestation_count;

  it('takes its lock again on a new session, beats it, and keeps polling', async function () {
    verifier = await startVerifier(
      { dataDir: dir, databaseUrl: schema.url, instanceId: 'cut-verifier', quoteInterval: 0.3 },
      { database, inProcessForTests: true },
    );
    await eventually('the agent attested', async () => (await attestations()) >= 2);
    const key = await beatKey();
    expect(key).to.be.a('number');
    const pid = await holder(key ?? 0);
    expect(pid).to.be.a('number');

    await knex.raw('select pg_terminate_backend(?)', [pid ?? 0]);
    await eventually('the lock taken again on another session and beaten', async () => {
      const now = await beatKey();
      const by = now === null ? undefined : await holder(now);
      return by !== undefined && by !== pid;
    }, 15_000);
    const before = await attestations();
    await eventually('still polling', async () => (await attestations()) >= before + 3);
    expect(((await knex('verifier_agents').where({ agent_id: 'cut-1' }).first('owner')) as { owner: string }).owner).to.equal('cut-verifier');

    const held = await beatKey();
    await verifier.close();
    verifier = undefined;
    expect(await holder(held ?? 0)).to.equal(undefined);
  });
});
