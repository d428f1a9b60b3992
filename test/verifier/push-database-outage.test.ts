import { expect } from 'chai';
import { pino } from 'pino';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { DatabaseOutage } from '../../lib/verifier/push/database-outage.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { openSchemaThroughPort, TEST_DATABASE_URL } from '../helpers/databases.js';
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
  // The first-attestation grace (the session challenge's lifetime) is part of the wait after an outage
  // (`verifierOutageDeadline`): PUSH_SETTINGS' minute would put the stopped agent's failure past the poll below.
  const GRACE_S = 3;
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
    const agent = push.agentOf(node, url, { initialDelayMs: 1_000, maxDelayMs: 2_000 });
    return agent.run(signal);
  }

  async function attested(node: PushNode): Promise<number> {
    return (await push.history(node.uuid)).filter((row) => row.outcome === 'pass').length;
  }

  before(async function () {
    proxy = new TcpProxy();
    await proxy.start();
    database = await openSchemaThroughPort(push.opened.database.knex, proxy.port, push.dir);
    second = await startVerifier(
      { dataDir: push.dir, ...PUSH_SETTINGS, pushTimeout: TIMEOUT_S, pushNonceLifetime: GRACE_S, instanceId: 'behind-the-proxy' },
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

describe('push model: DatabaseOutage, what counts as the verifier unable to use its database (TCP proxy, real PostgreSQL)', function () {
  this.timeout(30_000);
  let proxy: TcpProxy;
  let database: Database;
  let outage: DatabaseOutage;

  beforeEach(async function () {
    proxy = new TcpProxy();
    await proxy.start();
    const proxied = new URL(TEST_DATABASE_URL);
    proxied.port = String(proxy.port);
    database = await createDatabase({ url: proxied.toString(), dataDir: '.' });
    outage = new DatabaseOutage(database.knex, 500, () => Date.now());
  });

  afterEach(async function () {
    outage?.close();
    await database?.close();
    await proxy?.close();
  });

  const statement = () => database.knex.raw('select 1').then(() => 'answered', () => 'failed');

  it('an error of a statement the server answered is no outage', async function () {
    await database.knex.raw('select * from no_such_table_for_the_outage_test').catch(() => undefined);
    await database.knex.raw('select 1 / 0').catch(() => undefined);
    expect(outage.latest()).to.equal(undefined);
  });

  it('runs from the first failed connection to the first statement answered after it; a failure soon after continues it, a later one starts another', async function () {
    proxy.cut();
    const cutAt = Date.now();
    expect(await statement()).to.equal('failed');
    const during = outage.latest();
    expect(during?.from, 'from the failure').to.be.within(cutAt / 1000, Date.now() / 1000);
    await sleep(200);
    expect(outage.latest()?.to, 'still going on: now').to.be.within(Date.now() / 1000 - 0.05, Date.now() / 1000);
    proxy.restore();
    expect(await statement()).to.equal('answered');
    const ended = outage.latest();
    await sleep(200);
    expect(outage.latest(), 'ended when a statement was answered').to.deep.equal(ended);

    proxy.cut();
    expect(await statement()).to.equal('failed');
    expect(outage.latest()?.from, 'within 500 ms of the end: the same outage').to.equal(during?.from);
    proxy.restore();
    expect(await statement()).to.equal('answered');
    const merged = outage.latest();
    const gap = (merged?.to ?? 0) - (merged?.from ?? 0) - (merged?.downSeconds ?? Infinity);
    expect(gap, 'the 200 ms between the two failures, answered, is not down time').to.be.at.least(0.19);
    expect(merged?.downSeconds).to.be.greaterThan(ended?.downSeconds ?? Infinity);
    await sleep(600);
    proxy.cut();
    expect(await statement()).to.equal('failed');
    expect(outage.latest()?.from, 'more than 500 ms after: another').to.be.greaterThan(ended?.to ?? Infinity);
    proxy.restore();
  });
});
