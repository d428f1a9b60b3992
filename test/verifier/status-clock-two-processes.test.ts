import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { judgeVerifierStatus } from '../../lib/attestation/operator-decision.js';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { agentViewOf, verifierStatusReplyOf } from '../../lib/verifier/verifier-status-view.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { startFakePolledAgent, type FakePolledAgent } from './helpers/fake-polled-agent.js';
import { pullEnrolmentBody } from './helpers/pull-enrolment-body.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';

/** Seconds a PASS stays trusted (`staleAfter`). */
const BOUND = 10;
/** Seconds past the bound (and its one second for whole-second times) a silent agent may still read trusted: the polls' own delay. */
const MARGIN = 2;

interface Status {
  readonly trusted: boolean;
  readonly last_successful_attestation: number;
}

/**
 * Two verifier processes on one PostgreSQL whose clocks differ: `stamper` polls the agent and stores its
 * successes, `answerer` answers `GET /agents/{id}` (on this host's clock, which dates its reply). The
 * successes are stamped on the database's clock and shown on the answerer's, so a healthy agent stays
 * trusted and a silent one is not trusted past the bound, whichever clock is ahead.
 */
describe("verifier: a success stamped by one process and judged by another, on the database's clock", function () {
  this.timeout(120_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let database: Database;
  let knex: Knex;
  let agent: FakePolledAgent;
  const verifiers: RunningVerifier[] = [];

  async function start(instanceId: string, skewSeconds: number): Promise<RunningVerifier> {
    const verifier = await startVerifier(
      { dataDir: path.join(dir, instanceId), databaseUrl: schema.url, instanceId, quoteInterval: 0.5, staleAfter: BOUND, requestTimeout: 90, leaseSeconds: 30 },
      { inProcessForTests: true, processClockForTests: () => Date.now() + skewSeconds * 1000 },
    );
    verifiers.push(verifier);
    return verifier;
  }

  async function enrol(verifier: RunningVerifier, id: string): Promise<void> {
    const reply = await verifier.service.app.inject({
      method: 'POST',
      url: `/v2.6/agents/${id}`,
      payload: pullEnrolmentBody({ port: agent.port, akTpm: agent.fake.akTpm, mtlsCert: agent.certPem }),
    });
    expect(reply.statusCode, reply.body).to.equal(200);
  }

  /** The answerer's status of `id`, and what the keylime driver makes of it on this host's clock (the answerer's). */
  async function status(answerer: RunningVerifier, id: string): Promise<{ results: Status; driverPasses: boolean }> {
    const reply = await answerer.service.app.inject({ method: 'GET', url: `/v2.6/agents/${id}` });
    expect(reply.statusCode, reply.body).to.equal(200);
    const results = (JSON.parse(reply.body) as { results: Status }).results;
    const verdict = judgeVerifierStatus(agentViewOf(verifierStatusReplyOf(id, results)), { now: Date.now() / 1000, verifierNow: Date.now() / 1000 });
    return { results, driverPasses: verdict.kind === 'pass' };
  }

  /** When (unix seconds, the database's clock: this host's) the agent's last passing round was decided. */
  async function lastPass(id: string): Promise<{ at: number; owner: string }> {
    const row = (await knex('verifier_attestation_history')
      .where({ agent_id: id, outcome: 'pass' })
      .orderBy('id', 'desc')
      .first(knex.raw('extract(epoch from attempted_at)::float8 as at'), 'owner')) as { at: number; owner: string };
    return { at: Number(row.at), owner: row.owner };
  }

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-verifier-clocks-'));
    schema = await createTestSchema();
    database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: dir, searchPath: schema.name });
    knex = database.knex;
    agent = await startFakePolledAgent();
  });

  afterEach(async function () {
    // The hung requests fail first: a verifier's close waits for its rounds in flight.
    agent.silent = undefined;
    agent.server.closeAllConnections();
    await Promise.all(verifiers.splice(0).map((verifier) => verifier.close().catch(() => undefined)));
    await knex('verifier_agents').delete();
  });

  after(async function () {
    agent?.server.close();
    await database?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const skew of [60, -60]) {
    it(`a healthy agent stays trusted when the process stamping its successes runs ${Math.abs(skew)} s ${skew > 0 ? 'ahead of' : 'behind'} the one answering`, async function () {
      const id = `healthy${skew > 0 ? 'ahead' : 'behind'}`;
      const stamper = await start(`stamper-${id}`, skew);
      await enrol(stamper, id);
      const answerer = await start(`answerer-${id}`, 0);
      await eventually('a few passes', async () => ((await knex('verifier_agents').where({ agent_id: id }).first('attestation_count')) as { attestation_count: number }).attestation_count >= 3, 30_000);
      expect((await lastPass(id)).owner).to.equal(`stamper-${id}`);
      // Read until trusted: a loaded host may catch the agent between a missed round and its retry.
      let last: { results: Status; driverPasses: boolean } | undefined;
      await eventually('trusted by the answering process and by the driver', async () => {
        last = await status(answerer, id);
        return last.results.trusted && last.driverPasses;
      }, 30_000, 100);
      // Shown on the answerer's clock: about now here, not now plus the stamper's skew.
      expect(last?.results.last_successful_attestation).to.be.closeTo(Date.now() / 1000, BOUND);
    });
  }

  it('a silent agent is not trusted past the bound when the process that stamped its last success runs ahead of the one answering', async function () {
    const id = 'silent-ahead';
    // Ahead by less than the future dating refused (`FUTURE_SKEW_SECONDS`): a success stamped ahead was trusted that much longer.
    const stamper = await start(`stamper-${id}`, 4);
    await enrol(stamper, id);
    const answerer = await start(`answerer-${id}`, 0);
    await eventually('a few passes', async () => ((await knex('verifier_agents').where({ agent_id: id }).first('attestation_count')) as { attestation_count: number }).attestation_count >= 3, 30_000);
    await eventually('trusted', async () => (await status(answerer, id)).results.trusted, 30_000, 100);
    agent.silent = true;
    // Every reply that says trusted was judged after it was asked for: no such ask may come later than the bound allows.
    let lastTrustedAsk = 0;
    await eventually('no longer trusted', async () => {
      const asked = Date.now() / 1000;
      const { results, driverPasses } = await status(answerer, id);
      if (results.trusted || driverPasses) lastTrustedAsk = asked;
      return !results.trusted && !driverPasses;
    }, 60_000, 100);
    const pass = await lastPass(id);
    expect(pass.owner).to.equal(`stamper-${id}`);
    expect(lastTrustedAsk - pass.at, 'seconds after the last success a status still read trusted').to.be.at.most(BOUND + 1 + MARGIN);
  });
});
