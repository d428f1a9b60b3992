import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { fileAgentLogs } from '../../lib/agent/agent-logs.js';
import { PushAgent } from '../../lib/agent/push/push-agent.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { usePushVerifier, PUSH_SETTINGS, type PushNode } from './helpers/push-verifier.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The database stays away longer than the push silence timeout. A verifier instance reaches the shared
 * PostgreSQL through a TCP proxy the test cuts for 6 s (timeout 3 s, swept every 0.75 s); two push
 * agents attest to it, one keeps sending through the outage (its requests answered 500), the other
 * stopped just before it. The healthy agent must not be FAILED for the verifier's own silence; the
 * stopped one must still be failed, counted from the database's return. The agents back off 1–2 s, so
 * after the outage the sweep runs before the healthy agent's next attempt.
 */
describe('push model: a database outage longer than the silence timeout (TCP proxy, real PostgreSQL)', function () {
  this.timeout(90_000);
  // The first instance (not behind the proxy) never fails anyone: only the second one's sweep may.
  const push = usePushVerifier({ pushTimeout: 600 });
  const TIMEOUT_S = 3;
  const OUTAGE_MS = 6_000;
  let proxy: TcpProxy;
  let database: Database;
  let second: RunningVerifier;
  const running: AbortController[] = [];
  const runs: Promise<void>[] = [];
  let healthy: PushNode;
  let stopped: PushNode;
  let restoredAt = 0;
  const statusesDuringOutage: { status: number; trusted: unknown }[] = [];

  /** Runs an agent of `node`'s TPM against the second instance until `signal` aborts. */
  function attestToSecond(node: PushNode, url: string, signal: AbortSignal): Promise<void> {
    const agent = new PushAgent({
      uuid: node.uuid,
      verifierUrl: url,
      tpm: node.tpm,
      ak: node.ak,
      logs: fileAgentLogs(path.join(push.dir, `${node.uuid}.ima`), path.join(push.dir, `${node.uuid}.boot`)),
      bootTime: new Date(Date.now() - 60_000),
      backoff: { initialDelayMs: 1_000, maxDelayMs: 2_000 },
      log: pino({ level: 'silent' }),
    });
    return agent.run(signal);
  }

  async function attested(node: PushNode): Promise<number> {
    return (await push.history(node.uuid)).filter((row) => row.outcome === 'pass').length;
  }

  before(async function () {
    const target = new URL(TEST_DATABASE_URL);
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    const proxied = new URL(TEST_DATABASE_URL);
    proxied.port = String(proxy.port);
    const schema = ((await push.opened.database.knex.raw('select current_schema() as name')) as { rows: { name: string }[] }).rows[0]?.name;
    database = await createDatabase({ url: proxied.toString(), dataDir: push.dir, searchPath: schema });
    second = await startVerifier(
      { dataDir: push.dir, ...PUSH_SETTINGS, pushTimeout: TIMEOUT_S, instanceId: 'behind-the-proxy' },
      { database, inProcessForTests: true, logger: pino({ level: 'silent' }) },
    );
    const url = await second.service.app.listen({ port: 0, host: '127.0.0.1' });

    healthy = await push.bootNode();
    stopped = await push.bootNode();
    for (const node of [healthy, stopped]) {
      expect((await push.enrol(node)).status).to.equal(200);
      const controller = new AbortController();
      running.push(controller);
      runs.push(attestToSecond(node, url, controller.signal));
    }
    await pollUntil({ timeoutMs: 20_000, intervalMs: 100 }, 'both agents attested', async () => (await attested(healthy)) >= 1 && (await attested(stopped)) >= 1);
    running[1]?.abort();
    await runs[1];

    proxy.cut();
    const cutAt = Date.now();
    while (Date.now() - cutAt < OUTAGE_MS) {
      const reply = await push.call('GET', `/v2.5/agents/${healthy.uuid}`, undefined, undefined, second);
      statusesDuringOutage.push({ status: reply.status, trusted: reply.body['results']?.['trusted'] });
      await sleep(1_000);
    }
    proxy.restore();
    restoredAt = Date.now();
  });

  after(async function () {
    for (const controller of running) controller.abort();
    await Promise.all(runs);
    await second?.close().catch(() => undefined);
    await proxy?.close();
    await database?.close();
  });

  it('no PASS is reported while the database is away', function () {
    expect(statusesDuringOutage).to.not.be.empty;
    for (const seen of statusesDuringOutage) {
      expect(seen.status === 200 && seen.trusted === true, JSON.stringify(seen)).to.equal(false);
    }
  });

  it('the agent that kept sending is attested again after the outage, with no silence FAIL stored', async function () {
    const before = await attested(healthy);
    await pollUntil({ timeoutMs: 15_000, intervalMs: 100 }, 'a pass after the outage', async () => (await attested(healthy)) > before);
    // Past the sweeps that, counting the outage as the agent's silence, would have failed it.
    await sleep(3 * 750);
    const stored = await push.stored(healthy.uuid);
    expect(stored.state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect((await push.history(healthy.uuid)).filter((row) => row.outcome !== 'pass')).to.deep.equal([]);
    const status = await push.call('GET', `/v2.5/agents/${healthy.uuid}`, undefined, undefined, second);
    expect(status.body['results']).to.include({ attestation_status: 'PASS', trusted: true });
  });

  it('the agent that stopped is still failed for its silence, counted from the database\'s return', async function () {
    await pollUntil({ timeoutMs: 30_000, intervalMs: 100 }, 'the stopped agent failed', async () => (await push.stored(stopped.uuid)).state.operationalState === OperationalState.FAILED);
    expect((await push.stored(stopped.uuid)).state.lastEventId).to.equal('internal.verifier.not_reachable');
    const failed = (await push.history(stopped.uuid)).filter((row) => row.outcome === 'fail');
    expect(failed).to.have.length(1);
    expect((failed[0]?.attemptedAt ?? 0) - restoredAt, 'not before the timeout after the database came back').to.be.greaterThan(TIMEOUT_S * 1000);
  });
});
