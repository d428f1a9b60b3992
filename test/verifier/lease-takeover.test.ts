import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { startFakePolledAgent, type FakePolledAgent } from './helpers/fake-polled-agent.js';
import { pullEnrolmentBody } from './helpers/pull-enrolment-body.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';

/**
 * Two verifier processes (two instances, same verifier id) on one PostgreSQL: agents enrolled through
 * one are polled by it alone; a DELETE sent to the other goes through the TERMINATED handshake and
 * the owner deletes; when the owner stops, the other takes its agents over with their state.
 */
describe('verifier: two processes on one PostgreSQL (leases)', function () {
  this.timeout(60_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let database: Database;
  let knex: Knex;
  let agent: FakePolledAgent;
  const verifiers: RunningVerifier[] = [];

  /**
   * Leases of 4 s, renewed every 1.3 s: no step below waits for one to lapse (a process stopping releases
   * its leases at once), and with 1.5 s two renewals missed on a slow host let the other process take an
   * agent, a second owner change in its history.
   */
  async function start(instanceId: string): Promise<RunningVerifier> {
    const verifier = await startVerifier(
      { dataDir: path.join(dir, instanceId), databaseUrl: schema.url, instanceId, quoteInterval: 0.3, leaseSeconds: 4 },
      { inProcessForTests: true },
    );
    verifiers.push(verifier);
    return verifier;
  }

  function enrol(verifier: RunningVerifier, id: string): Promise<{ statusCode: number }> {
    return verifier.service.app.inject({
      method: 'POST',
      url: `/v2.6/agents/${id}`,
      payload: pullEnrolmentBody({ port: agent.port, akTpm: agent.fake.akTpm, mtlsCert: agent.certPem }),
    });
  }

  const owners = async (): Promise<Record<string, string | null>> =>
    Object.fromEntries(((await knex('verifier_agents').select('agent_id', 'owner')) as { agent_id: string; owner: string | null }[]).map((r) => [r.agent_id, r.owner]));

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-verifier-leases-'));
    schema = await createTestSchema();
    database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: dir, searchPath: schema.name });
    knex = database.knex;
    agent = await startFakePolledAgent();
  });

  after(async function () {
    await Promise.all(verifiers.map((verifier) => verifier.close().catch(() => undefined)));
    agent?.server.close();
    await database?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('polls an agent only in the process that owns it, deletes across processes, and hands agents over on shutdown', async function () {
    const a = await start('instance-a');
    const b = await start('instance-b');
    for (const id of ['x1', 'x2', 'x3']) {
      expect((await enrol(a, id)).statusCode).to.equal(200);
    }
    expect((await enrol(b, 'y1')).statusCode).to.equal(200);
    await eventually('every agent attested', async () => {
      const rows = (await knex('verifier_agents').select('attestation_count')) as { attestation_count: number }[];
      return rows.length === 4 && rows.every((r) => r.attestation_count >= 2);
    });
    // Fair share (verifier_processes): A enrolled three, so it lets one go and B claims it — 2 and 2.
    await eventually('two agents each', async () => a.scheduler.size === 2 && b.scheduler.size === 2, 10_000);
    const held = Object.values(await owners());
    expect(held.filter((owner) => owner === 'instance-a')).to.have.length(2);
    expect(held.filter((owner) => owner === 'instance-b')).to.have.length(2);
    // Every history row was written by the process that owned the agent then: an agent's rows change owner at most once.
    const historyOwners = (await knex('verifier_attestation_history').select('agent_id', 'owner').orderBy('id')) as { agent_id: string; owner: string }[];
    for (const id of ['x1', 'x2', 'x3', 'y1']) {
      const sequence = historyOwners.filter((r) => r.agent_id === id).map((r) => r.owner);
      expect(sequence.filter((owner, i) => i > 0 && owner !== sequence[i - 1]), id).to.have.length.at.most(1);
    }

    // DELETE through B of an agent A polls: 202, then A's loop deletes it.
    const deleted = await b.service.app.inject({ method: 'DELETE', url: '/v2.6/agents/x3' });
    expect(deleted.statusCode).to.equal(202);
    await eventually('x3 deleted by its owner', async () => (await knex('verifier_agents').where({ agent_id: 'x3' })).length === 0);

    // A stops: its leases lapse at once and B takes x1 and x2 with their state.
    const counts = Object.fromEntries(((await knex('verifier_agents').select('agent_id', 'attestation_count')) as { agent_id: string; attestation_count: number }[]).map((r) => [r.agent_id, r.attestation_count]));
    await a.close();
    await eventually('B owns every agent', async () => Object.values(await owners()).every((owner) => owner === 'instance-b'), 10_000);
    await eventually('x1 attested by B', async () => {
      const row = (await knex('verifier_agents').where({ agent_id: 'x1' }).first()) as { attestation_count: number };
      return row.attestation_count > (counts['x1'] ?? 0) + 1;
    });
    expect(b.scheduler.size).to.equal(3);
    const [latest] = (await knex('verifier_attestation_history').where({ agent_id: 'x1' }).orderBy('id', 'desc').limit(1)) as { owner: string; outcome: string }[];
    expect(latest).to.include({ owner: 'instance-b', outcome: 'pass' });
  });
});
