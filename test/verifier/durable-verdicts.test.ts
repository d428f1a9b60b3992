import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { ROUND_START_SLOT_MS, slotCapacity } from '../../lib/verifier/round-start-grid.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { enrolFakeAgent, startFakePolledAgent, type FakePolledAgent } from './helpers/fake-polled-agent.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';
import { passRowsPerAgent } from './helpers/pass-rows-per-agent.js';

const AGENTS = 6;
const INTERVAL = 1;
const OUTAGE_MS = 4000;

interface PolledFake extends FakePolledAgent {
  readonly id: string;
}

/**
 * The database becomes unreachable for several seconds (a TCP proxy between the verifier and the shared
 * PostgreSQL is cut, then restored) while agents are polled, two of them tampered with during the
 * outage — one by a binary outside its policy, one by a binary whose path holds a NUL byte (a failure
 * context PostgreSQL's `text`/`jsonb` refuse unless escaped). Without a verifier restart: both FAILs
 * are stored once the database is back, no agent is dropped, every agent's `pass` history rows equal
 * its `attestation_count`, `/health` says not ready during the outage, and neither tampered agent is
 * reported PASS at any time after the tampering plus one interval.
 */
describe('verifier: durable verdicts across a database outage (TCP proxy, real PostgreSQL)', function () {
  this.timeout(120_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let direct: Database;
  let knex: Knex;
  let proxy: TcpProxy;
  let verifier: RunningVerifier;
  const agents: PolledFake[] = [];

  async function status(id: string): Promise<{ statusCode: number; results: Record<string, unknown> }> {
    const reply = await verifier.service.app.inject({ method: 'GET', url: `/v2.6/agents/${id}` });
    return { statusCode: reply.statusCode, results: (reply.json() as { results: Record<string, unknown> }).results };
  }

  async function health(): Promise<number> {
    return (await verifier.service.app.inject({ method: 'GET', url: '/health' })).statusCode;
  }

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-verifier-durable-'));
    schema = await createTestSchema();
    direct = await createDatabase({ url: TEST_DATABASE_URL, dataDir: dir, searchPath: schema.name });
    knex = direct.knex;
    proxy = new TcpProxy();
    await proxy.start();
    const proxied = new URL(schema.url);
    proxied.port = String(proxy.port);
    for (let i = 0; i < AGENTS; i += 1) {
      agents.push({ id: `durable-${i}`, ...(await startFakePolledAgent()) });
    }
    verifier = await startVerifier(
      {
        dataDir: dir,
        databaseUrl: proxied.toString(),
        quoteInterval: INTERVAL,
        retryInterval: 0.2,
        maxRetries: 2,
        exponentialBackoff: false,
        leaseSeconds: 3,
      },
      { inProcessForTests: true },
    );
    for (const agent of agents) {
      await enrolFakeAgent(verifier, agent.id, agent);
    }
  });

  after(async function () {
    await verifier?.close().catch(() => undefined);
    await proxy?.close();
    for (const agent of agents) {
      agent.server.close();
    }
    await direct?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores the FAILs reached during the outage once the database is back, drops no agent and never shows a stale PASS', async function () {
    await eventually('every agent attested twice', async () => {
      const rows = (await knex('verifier_agents').select('attestation_count')) as { attestation_count: number }[];
      return rows.length === AGENTS && rows.every((r) => r.attestation_count >= 2);
    }, 30_000);
    expect(await health()).to.equal(200);

    const [evil, nul] = agents as [PolledFake, PolledFake];
    // Watch both tampered agents' status the whole time: asked after tampering + one interval, never PASS.
    // Judged by when a question was asked: on a slow host one asked in time may be answered past the bound.
    const passesAfterBound: string[] = [];
    let tamperedAt = Number.POSITIVE_INFINITY;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const agent of [evil, nul]) {
          const askedAt = Date.now();
          const seen = await status(agent.id).catch(() => undefined);
          if (seen?.statusCode === 200 && seen.results['attestation_status'] === 'PASS' && askedAt > tamperedAt + INTERVAL * 1000) {
            passesAfterBound.push(`${agent.id} asked at +${askedAt - tamperedAt} ms`);
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    proxy.cut();
    tamperedAt = Date.now();
    evil.fake.measure('/usr/bin/evil', 'evil');
    nul.fake.measure('/usr/bin/e\u0000vil', 'evil with a NUL');
    await eventually('the verifier to say it is not ready', async () => (await health()) === 503, 10_000, 100);
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    expect(await health()).to.equal(503);
    proxy.restore();

    await eventually('both FAILs stored', async () => {
      const rows = (await knex('verifier_agents').whereIn('agent_id', [evil.id, nul.id]).select('operational_state')) as { operational_state: number }[];
      return rows.length === 2 && rows.every((r) => r.operational_state === OperationalState.INVALID_QUOTE);
    }, 30_000);
    await eventually('the verifier ready again', async () => (await health()) === 200, 10_000);

    // No agent dropped: the untampered ones are still polled and attested after the outage.
    const before = await counts();
    await eventually('every untampered agent attested again', async () => {
      const now = await counts();
      return agents.slice(2).every((agent) => (now[agent.id] ?? 0) >= (before[agent.id] ?? 0) + 2);
    }, 30_000);
    expect(verifier.scheduler.size).to.equal(AGENTS - 2);
    watching = false;
    await watcher;
    expect(passesAfterBound).to.deep.equal([]);

    // The failures are stored as decided, the NUL escaped (not dropped).
    const [evilFail] = (await knex('verifier_attestation_history').where({ agent_id: evil.id, outcome: 'fail' })) as { failures: unknown }[];
    expect(JSON.stringify(evilFail?.failures)).to.include('/usr/bin/evil');
    const [nulFail] = (await knex('verifier_attestation_history').where({ agent_id: nul.id, outcome: 'fail' })) as { failures: { event_id: string }[] }[];
    expect(nulFail?.failures.map((f) => f.event_id)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
    expect(JSON.stringify(nulFail?.failures)).to.include('/usr/bin/e\\\\u0000vil');
    expect((await status(nul.id)).results).to.include({ last_event_id: 'ima.validation.ima-ng.not_in_allowlist', attestation_status: 'FAIL', trusted: false });

    // The outage shows in /metrics: failed writes, both failures, agents by state.
    const metrics = await verifier.service.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).to.equal(200);
    expect(metrics.headers['content-type']).to.match(/^text\/plain/);
    const value = (pattern: RegExp): number => Number(pattern.exec(metrics.body)?.[1] ?? Number.NaN);
    expect(value(/^ironlime_verifier_failed_writes_total (\d+)/m)).to.be.greaterThan(0);
    expect(value(/^ironlime_verifier_rounds_total\{outcome="fail"\} (\d+)/m)).to.equal(2);
    expect(value(/^ironlime_verifier_rounds_total\{outcome="pass"\} (\d+)/m)).to.be.greaterThan(AGENTS * 2);
    expect(value(/^ironlime_verifier_agents\{state="Get Quote"\} (\d+)/m)).to.equal(AGENTS - 2);
    expect(value(/^ironlime_verifier_unstored_rounds (\d+)/m)).to.equal(0);
    expect(metrics.body).to.match(/^ironlime_verifier_round_start_delay_seconds_bucket/m);
    // Every round decided was started from a slot of the grid, and each slot counted its rounds.
    const decided = value(/^ironlime_verifier_rounds_total\{outcome="pass"\} (\d+)/m) + value(/^ironlime_verifier_rounds_total\{outcome="fail"\} (\d+)/m);
    expect(value(/^ironlime_verifier_rounds_per_slot_sum (\d+)/m)).to.be.at.least(decided);
    expect(value(/^ironlime_verifier_rounds_per_slot_count (\d+)/m)).to.be.greaterThan(0);
    // A slot's capacity for the agents still polled (the two failed ones are not): twice ⌈4 × 20 ms / 1 s⌉.
    expect(value(/^ironlime_verifier_slot_capacity (\d+)/m)).to.equal(slotCapacity(AGENTS - 2, INTERVAL * 1000, ROUND_START_SLOT_MS)).and.to.equal(2);

    // History and attestation_count agree for every agent (one statement: one snapshot).
    const rows = await passRowsPerAgent(knex);
    expect(rows).to.have.length(AGENTS);
    for (const row of rows) {
      expect(row.passes, row.agent_id).to.equal(row.attestation_count);
    }
  });

  async function counts(): Promise<Record<string, number>> {
    const rows = (await knex('verifier_agents').select('agent_id', 'attestation_count')) as { agent_id: string; attestation_count: number }[];
    return Object.fromEntries(rows.map((r) => [r.agent_id, r.attestation_count]));
  }
});
