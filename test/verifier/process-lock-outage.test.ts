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
import { openSchemaThroughPort, TEST_DATABASE_URL } from '../helpers/databases.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';
import { serveFakeAgents } from './helpers/fake-agent-server.js';

const AGENTS = 8;
/** Keylime's default quote interval: the dead-process watch ticks every half second. */
const INTERVAL = 2;
const OWNERS = ['verifier-a', 'verifier-b'] as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Two live verifier processes (in this test process, each reaching PostgreSQL through a TCP proxy of
 * its own) split 8 agents 4/4, with the default 30 s lease. Faults that end lock sessions of live
 * processes must move no agent: one process's lock session terminated again and again (a NAT or load
 * balancer reset), every lock session terminated at once with the rows made to look written on
 * another server instance (a restart or a failover), and every connection of both processes cut for
 * 3 s (a crash restart of the server: every session ends, the instance stays). Each time both take
 * their locks back.
 */
describe('verifier: live processes whose lock sessions end keep their agents (real PostgreSQL)', function () {
  this.timeout(120_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let database: Database;
  let knex: Knex;
  let server: Server;
  const proxies = new Map<string, TcpProxy>();
  const databases: Database[] = [];
  const verifiers: RunningVerifier[] = [];
  const fake = new FakeAgent();

  async function startProcess(owner: string): Promise<void> {
    const proxy = new TcpProxy();
    await proxy.start();
    proxies.set(owner, proxy);
    const through = await openSchemaThroughPort(knex, proxy.port, dir);
    databases.push(through);
    verifiers.push(
      await startVerifier({ dataDir: path.join(dir, owner), instanceId: owner, quoteInterval: INTERVAL }, { database: through, inProcessForTests: true }),
    );
  }

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-lock-outage-'));
    schema = await createTestSchema();
    database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: dir, searchPath: schema.name });
    knex = database.knex;
    await migrateLatest(knex);
    const agents = await serveFakeAgents(fake, 0x400);
    server = agents.server;
    const { port } = agents;
    const tls = { certPem: agents.certPem };
    const repository = new VerifierAgentRepository(knex);
    for (let i = 0; i < AGENTS; i += 1) {
      await repository.insert(
        pullAgentEnrolment({ agentId: `fleet-${i}`, port, tpmPolicy: '{"mask": "0x400"}', akTpm: fake.akTpm, mtlsCert: tls.certPem, supportedVersion: '2.2' }),
        initialAgentState(OperationalState.START),
        null,
        30,
      );
    }
    // Started together, each sees the other's beat at its first sweep and claims its half.
    await Promise.all(OWNERS.map((owner) => startProcess(owner)));
    await eventually('the two processes hold 4 agents each, all attested', async () => {
      const rows = (await knex('verifier_agents').select('owner', 'attestation_count')) as { owner: string | null; attestation_count: number }[];
      return OWNERS.every((owner) => rows.filter((row) => row.owner === owner && row.attestation_count >= 1).length === AGENTS / 2);
    }, 30_000, 200);
    await locksBack();
  });

  after(async function () {
    for (const verifier of verifiers) await verifier.close();
    for (const through of databases) await through.close();
    for (const proxy of proxies.values()) await proxy.close();
    server?.close();
    await database?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const owners = async (): Promise<Record<string, string | null>> =>
    Object.fromEntries(((await knex('verifier_agents').select('agent_id', 'owner').orderBy('agent_id')) as { agent_id: string; owner: string | null }[]).map((r) => [r.agent_id, r.owner]));

  /** The backends holding the process locks of `owners`' beaten keys. */
  async function lockBackends(of: readonly string[]): Promise<number[]> {
    const result = (await knex.raw(
      `select l.pid from pg_locks l join verifier_processes p on l.objid = p.lock_key::oid
       where l.locktype = 'advisory' and l.classid = ?::oid and l.objsubid = 2 and l.granted and p.owner = any(?)`,
      [PROCESS_LOCK_CLASS, [...of]],
    )) as { rows: { pid: number }[] };
    return result.rows.map((row) => row.pid);
  }

  /** Both processes beat a key whose lock a session holds, on the server instance running now. */
  async function locksBack(): Promise<void> {
    await eventually('both processes hold their locks again and beat them', async () => {
      const result = (await knex.raw(
        `select count(*)::int as held from verifier_processes p
         where p.lock_instance = pg_postmaster_start_time() and exists (select 1 from pg_locks l
           where l.locktype = 'advisory' and l.classid = ?::oid and l.objid = p.lock_key::oid and l.objsubid = 2 and l.granted)`,
        [PROCESS_LOCK_CLASS],
      )) as { rows: { held: number }[] };
      return result.rows[0]?.held === OWNERS.length;
    }, 15_000, 100);
    // Held long enough to judge others by (`ProcessLock.settledKey`): a take-over would be possible now.
    await sleep(1200);
  }

  /** Fails as soon as an agent's owner differs from `before`, checked every 100 ms for `ms`. */
  async function ownersStay(before: Record<string, string | null>, ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      expect(await owners()).to.deep.equal(before);
      await sleep(100);
    }
  }

  it('one process\'s lock session terminated again and again: none of its agents moves', async function () {
    const before = await owners();
    for (let blip = 0; blip < 6; blip += 1) {
      await knex.raw('select pg_terminate_backend(pid) from unnest(?::int[]) as pid', [await lockBackends(['verifier-a'])]);
      await ownersStay(before, 1500);
    }
    await locksBack();
    await ownersStay(before, 1000);
  });

  it('every lock session terminated at once, rows as if written on another server instance: no agent moves', async function () {
    const before = await owners();
    for (let restart = 0; restart < 2; restart += 1) {
      await knex.raw(
        `with ended as (select pg_terminate_backend(pid) from unnest(?::int[]) as pid)
         update verifier_processes set lock_instance = pg_postmaster_start_time() - interval '1 hour' where (select count(*) from ended) >= 0`,
        [await lockBackends(OWNERS)],
      );
      await ownersStay(before, 2500);
      await locksBack();
    }
    await ownersStay(before, 1000);
  });

  it('every connection of both processes cut for 3 s (the server instance unchanged): no agent moves', async function () {
    const before = await owners();
    for (const proxy of proxies.values()) proxy.cut();
    await sleep(3000);
    for (const proxy of proxies.values()) proxy.restore();
    await ownersStay(before, 4000);
    await locksBack();
    await ownersStay(before, 1000);
  });
});
