import { expect } from 'chai';
import { pino } from 'pino';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { PUSH_SETTINGS, usePushVerifier, type PushNode } from './helpers/push-verifier.js';
import { heldHash } from './helpers/held-hash.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The silence deadline of the hashes that stand for a backlog ahead of the test's agents: closer to being failed than any. */
const URGENT = 0;

/**
 * A fleet enrolled at once queues for its first sessions' 600 000-round PBKDF2 hashes (at 1,000 agents
 * on two threads, longer than the silence timeout and the first-attestation grace together): the test
 * fills the verifier's own hash gate with hashes it holds for longer than that allowance (timeout 3 s +
 * grace 5 s), while a healthy agent, enrolled meanwhile, is refused 503 `verifier_busy` and comes back.
 * Before, the silence sweep failed it (and any agent enrolled with it) at timeout + grace after its
 * enrolment, for good. It must attest once the backlog is worked off, never failed; an agent enrolled
 * with it that never attests must still be failed, not before the backlog's end + timeout + grace,
 * and within the documented bound after it (`verifierOutageDeadline`: + 1.25 × the busy time).
 */
describe('push model: a session backlog longer than the first-attestation allowance (real PostgreSQL)', function () {
  this.timeout(120_000);
  const TIMEOUT_S = 3;
  const GRACE_S = 5;
  const HELD_MS = 15_000;
  const stop = new AbortController();
  let running: Promise<void> | undefined;
  // Before the verifier's own `after`, which closes the nodes' agents.
  after(async function () {
    stop.abort();
    await running;
  });
  const push = usePushVerifier({ pushTimeout: TIMEOUT_S, pushNonceLifetime: GRACE_S });
  let healthy: PushNode;
  let silent: PushNode;
  let busyFrom = 0;
  let releasedAt = 0;
  const statesWhileBusy: string[] = [];

  before(async function () {
    const gate = push.verifier.push.slowHashes;
    const held = Array.from({ length: gate.concurrency + gate.maxWaiting }, () => heldHash());
    const hashes = held.map((hash) => gate.run(() => hash.promise, URGENT));
    busyFrom = Date.now();
    healthy = await push.bootNode();
    silent = await push.bootNode();
    expect((await push.enrol(healthy)).status).to.equal(200);
    expect((await push.enrol(silent)).status).to.equal(200);
    running = healthy.agent.run(stop.signal);
    while (Date.now() - busyFrom < HELD_MS) {
      for (const node of [healthy, silent]) statesWhileBusy.push(`${node === healthy ? 'healthy' : 'silent'}: ${(await push.stored(node.uuid)).state.operationalState}`);
      await sleep(500);
    }
    for (const hash of held) hash.finish();
    await Promise.all(hashes);
    releasedAt = Date.now();
  });

  it('the gate was full: the healthy agent was refused while it held, and nobody was failed meanwhile', function () {
    expect(push.verifier.push.slowHashes.busy()?.from, 'refused while held').to.be.within(busyFrom / 1000, releasedAt / 1000);
    expect(statesWhileBusy.filter((seen) => !seen.endsWith(`: ${OperationalState.GET_QUOTE}`))).to.deep.equal([]);
  });

  it('the healthy agent attests once the backlog is worked off, with no silence FAIL stored', async function () {
    await pollUntil({ timeoutMs: 40_000, intervalMs: 200 }, 'a first pass', async () => (await push.history(healthy.uuid)).some((row) => row.outcome === 'pass'));
    // Past the sweeps (every 0.75 s) that would fail it had the backlog counted as its silence.
    await sleep(4 * 750);
    expect((await push.stored(healthy.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect((await push.history(healthy.uuid)).filter((row) => row.outcome !== 'pass')).to.deep.equal([]);
  });

  it('the agent that never attests is still failed, counted from the backlog\'s end, within its bound', async function () {
    await pollUntil({ timeoutMs: 60_000, intervalMs: 200 }, 'the never-attesting agent failed', async () => (await push.stored(silent.uuid)).state.operationalState === OperationalState.FAILED);
    expect((await push.stored(silent.uuid)).state.lastEventId).to.equal('internal.verifier.not_reachable');
    const [failed] = (await push.history(silent.uuid)).filter((row) => row.outcome === 'fail');
    const afterRelease = (failed?.attemptedAt ?? 0) - releasedAt;
    expect(afterRelease, 'not before timeout + grace after the backlog ended').to.be.greaterThan((TIMEOUT_S + GRACE_S) * 1000);
    // The end + timeout + grace + 1.25 × the busy time, a sweep interval (0.75 s) and slack for a loaded machine.
    expect(afterRelease, 'within the documented bound').to.be.below((TIMEOUT_S + GRACE_S + 1.25 * (HELD_MS / 1000) + 10) * 1000);
  });
});

/**
 * The same storm after a verifier restart: a verified token is remembered only in its process's memory,
 * so an attested agent's first request to a new process costs a hash at its gate (a new session here,
 * as an agent whose token was refused opens one). The test runs a second verifier process on the same
 * database (the first one's timeout is 10 minutes: only the second one's sweep may fail anyone), fills
 * its gate for longer than the bare timeout (3 s) and moves an attested agent to it. Before, the second
 * process's sweep failed the agent at its last attestation + 3 s; it must attest there once the hashes
 * are released, never failed.
 */
describe('push model: an attested agent queued at a restarted verifier\'s session backlog (real PostgreSQL)', function () {
  this.timeout(120_000);
  const TIMEOUT_S = 3;
  const HELD_MS = 10_000;
  const stops: AbortController[] = [];
  const runs: Promise<void>[] = [];
  after(async function () {
    for (const stop of stops) stop.abort();
    await Promise.all(runs);
  });
  const push = usePushVerifier({ pushTimeout: 600 });
  let restarted: RunningVerifier;
  let node: PushNode;
  const statesWhileBusy: number[] = [];

  function attestTo(url: string): void {
    const stop = new AbortController();
    stops.push(stop);
    const agent = push.agentOf(node, url);
    runs.push(agent.run(stop.signal).finally(() => agent.close().catch(() => undefined)));
  }

  before(async function () {
    restarted = await startVerifier(
      { dataDir: push.dir, ...PUSH_SETTINGS, pushTimeout: TIMEOUT_S, pushNonceLifetime: 5, instanceId: 'restarted' },
      { database: push.opened.database, inProcessForTests: true, logger: pino({ level: 'silent' }) },
    );
    const url = await restarted.service.app.listen({ port: 0, host: '127.0.0.1' });
    node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    const first = new AbortController();
    const running = node.agent.run(first.signal);
    await pollUntil({ timeoutMs: 20_000, intervalMs: 100 }, 'a first pass', async () => (await push.history(node.uuid)).some((row) => row.outcome === 'pass'));
    first.abort();
    await running;
    const gate = restarted.push.slowHashes;
    const held = Array.from({ length: gate.concurrency + gate.maxWaiting }, () => heldHash());
    const hashes = held.map((hash) => gate.run(() => hash.promise, URGENT));
    attestTo(url);
    const since = Date.now();
    while (Date.now() - since < HELD_MS) {
      statesWhileBusy.push((await push.stored(node.uuid)).state.operationalState);
      await sleep(500);
    }
    for (const hash of held) hash.finish();
    await Promise.all(hashes);
  });

  after(async function () {
    await restarted?.close();
  });

  it('is not failed while queued, and attests at the restarted process once the backlog is worked off', async function () {
    expect(restarted.push.slowHashes.busy(), 'it was refused').to.not.equal(undefined);
    expect(statesWhileBusy.filter((state) => state !== OperationalState.GET_QUOTE)).to.deep.equal([]);
    const passes = (await push.history(node.uuid)).filter((row) => row.outcome === 'pass').length;
    await pollUntil({ timeoutMs: 40_000, intervalMs: 200 }, 'a pass at the restarted process', async () => (await push.history(node.uuid)).filter((row) => row.outcome === 'pass').length > passes);
    await sleep(4 * 750);
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect((await push.history(node.uuid)).filter((row) => row.outcome !== 'pass')).to.deep.equal([]);
  });
});

/**
 * The verifier's gate joins busy times less than a timeout + the first-attestation grace apart: agents
 * refused in a storm come back after the backlog drained, and their refusals must continue its busy time,
 * not start one whose start lies past the deadlines of agents still queued. Timeout 2 s, grace 20 s:
 * refusals 5 s apart are one busy time (with a merge over the timeout alone they were two).
 */
describe('push model: the verifier joins busy times of its session-hash gate over a timeout + grace (real PostgreSQL)', function () {
  this.timeout(60_000);
  const push = usePushVerifier({ pushTimeout: 2, pushNonceLifetime: 20 });

  async function refuseOnce(): Promise<void> {
    const gate = push.verifier.push.slowHashes;
    const held = Array.from({ length: gate.concurrency + gate.maxWaiting }, () => heldHash());
    const hashes = held.map((hash) => gate.run(() => hash.promise, URGENT));
    const refused = await gate.run(() => Promise.resolve('hashed')).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused, 'refused').to.not.equal(undefined);
    for (const hash of held) hash.finish();
    await Promise.all(hashes);
  }

  it('counts a refusal 5 s after the backlog drained as the same busy time', async function () {
    await refuseOnce();
    const first = push.verifier.push.slowHashes.busy();
    await sleep(5_000);
    await refuseOnce();
    expect(push.verifier.push.slowHashes.busy()?.from).to.equal(first?.from);
  });
});

/**
 * A storm that never lets the queue drain: hashes for agents further from their silence deadline (nodes
 * enrolled later, or that attested moments ago) keep the gate full, each place freed taken at once, as
 * in a rolling enrolment of thousands of nodes or under nodes that prove session after session. In
 * arrival order the healthy agent, enrolled meanwhile, came back each time to a full queue and was
 * refused for as long as the stream lasted, until the busy time's bounded excuse ran out and the sweep
 * failed it, though the verifier was the one refusing it. By deadline its proof takes the place of the
 * last hash waiting, and it attests while the storm goes on.
 */
describe('push model: a healthy agent in a storm of hashes further from their deadlines (real PostgreSQL)', function () {
  this.timeout(120_000);
  const STORM_MS = 20_000;
  const HASH_MS = 200;
  const stop = new AbortController();
  let running: Promise<void> | undefined;
  after(async function () {
    stop.abort();
    await running;
  });
  const push = usePushVerifier({ pushTimeout: 3, pushNonceLifetime: 5 });
  let node: PushNode;
  let passedInStorm = false;
  let stormHashes = 0;

  before(async function () {
    const gate = push.verifier.push.slowHashes;
    let storming = true;
    const settled: Promise<unknown>[] = [];
    // Refilled in the same turn as the run that made room, before any request is read: the queue is never short.
    const addHash = (): void => {
      const run = gate.run(async () => {
        await sleep(HASH_MS);
        stormHashes += 1;
      }, Date.now() / 1000 + 3600);
      settled.push(run.then(() => (storming ? addHash() : undefined), () => undefined));
    };
    for (let i = 0; i < gate.concurrency + gate.maxWaiting; i += 1) addHash();
    const since = Date.now();
    node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    running = node.agent.run(stop.signal);
    while (Date.now() - since < STORM_MS && !passedInStorm) {
      passedInStorm = (await push.history(node.uuid)).some((row) => row.outcome === 'pass');
      await sleep(250);
    }
    storming = false;
    await Promise.all(settled);
  });

  it('attests while the gate is still full, never failed', async function () {
    expect(push.verifier.push.slowHashes.busy(), 'the gate refused').to.not.equal(undefined);
    expect(stormHashes, 'the storm kept the gate working').to.be.above(0);
    expect(passedInStorm, 'a pass before the storm ended').to.equal(true);
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect((await push.history(node.uuid)).filter((row) => row.outcome !== 'pass')).to.deep.equal([]);
  });
});
