import type { Server } from 'node:https';
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import type { PullDecision } from '../../lib/attestation/pull-decision.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { OffThreadJson } from '../../lib/http/off-thread-json.js';
import { ReplyBudget } from '../../lib/http/reply-budget.js';
import { emptyRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import type { PolledAgent } from '../../lib/verifier/polled-agent.js';
import { runPullRound } from '../../lib/verifier/pull-round.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import type { StoredRuntimePolicy, Versioned } from '../../lib/verifier/verifier-policy-repository.js';
import { watchEventLoopStalls } from '../helpers/event-loop-stalls.js';
import { paddedPast1MiB } from '../http/hostile-json-bodies.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { hugeReplyServer, loadedHugeReplyAgent, splicedReply } from './helpers/huge-reply-server.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';
import { ROUND_TEST_SETTINGS } from './helpers/pull-settings.js';

const FAULTY_WORKER = new URL('../http/fixtures/faulty-off-thread-worker.js', import.meta.url);
/** ima-ng lines of the agent's log: ~170 bytes each, a reply of some 60 MiB (an agent may send 64). */
const LINES = 350_000;
/** A stall the test allows the verifier's event loop: parsing and judging this reply in one go held it for seconds. */
const MAX_STALL_MS = 500;
const POLICY_TEXT = JSON.stringify({ ...emptyRuntimePolicy(), excludes: ['boot_aggregate', '/usr/lib/huge/.*'] });
/** The agent's runtime policy, as stored: its files are excluded, so any other path fails the round. */
const RUNTIME_POLICY: Versioned<StoredRuntimePolicy> = {
  name: 'huge-ima-policy',
  runtimePolicy: POLICY_TEXT,
  checksum: createHash('sha256').update(POLICY_TEXT).digest('hex'),
  generator: 0,
  tpmPolicy: null,
  version: '1',
};

const settings = ROUND_TEST_SETTINGS;

/**
 * Issue 10: one enrolled pull agent answering its first quote with a whole IMA log of tens of MiB (a
 * compromised node may, every round) must not stall the verifier's event loop — the other agents'
 * rounds, the push routes, /health and /metrics — for the seconds its JSON.parse and replay take. The
 * round runs as the pull loop runs it (a real `AgentClient` over TLS with the loop's reply budget and
 * off-thread JSON reader, the real engine) and still reaches the same verdict: a clean log passes with
 * every line committed, a log with one line changed fails, and a reply the reader cannot queue is retried, never a pass.
 */
describe('pull round: a huge IMA reply is judged without stalling the event loop', function () {
  this.timeout(120_000);
  const agentTls = createSelfSignedServerCertificate({ commonName: 'agent', sans: ['127.0.0.1'] });
  const verifierTls = createSelfSignedServerCertificate({ commonName: 'verifier' });
  const fake = new FakeAgent();
  /** The agent's IMA list as a JSON string token, built once: the server only splices it in. */
  let listJson: Buffer;
  let server: Server;
  let port: number;
  const offThreadJson = new OffThreadJson();

  before(function () {
    for (let i = 1; i < LINES; i += 1) fake.measure(`/usr/lib/huge/file-${i}.so`, `content ${i}`);
    listJson = Buffer.from(JSON.stringify(fake.imaLines.map((line) => `${line}\n`).join('')));
  });

  before(async function () {
    ({ server, port } = await hugeReplyServer(agentTls, (query) => {
      // Asked past the end of its list, the fake agent quotes with an empty one: the whole list goes in its place.
      const results = { ...fake.reply({ nonce: query.get('nonce') ?? '', mask: 0x400, imaEntry: fake.imaLines.length, partial: false }), ima_measurement_list_entry: 0 };
      return splicedReply(results, 'ima_measurement_list', listJson);
    }));
  });

  after(async function () {
    server.close();
    await offThreadJson.close();
  });

  /** The agent's first round (all of its list asked for), run as the pull loop runs it, and the worst stall of the event loop meanwhile. */
  async function firstRound(reader = offThreadJson): Promise<{ readonly decision: PullDecision; readonly worstStallMs: number; readonly budget: ReplyBudget }> {
    const budget = new ReplyBudget(128 * 1024 * 1024);
    const agent = await polledAgent(budget, reader);
    const watch = watchEventLoopStalls();
    try {
      const decision = await runPullRound(agent, settings, () => Date.now() / 1000);
      return { decision, worstStallMs: watch.stop(), budget };
    } finally {
      watch.stop();
      agent.connection.close();
    }
  }

  it('passes a clean log, every line committed, the event loop never held for long', async function () {
    const { decision, worstStallMs, budget } = await firstRound();
    expect(decision.history?.outcome, JSON.stringify(decision.history?.failures)).to.equal('pass');
    expect(decision.state.ima.nextEntry).to.equal(LINES);
    expect(decision.history?.imaEntriesReceived).to.equal(LINES);
    expect(worstStallMs).to.be.below(MAX_STALL_MS);
    // The reply was counted, and its share ended with its judging.
    expect(budget.highWater).to.be.above(listJson.length);
    expect(budget.inFlight).to.equal(0);
  });

  it('fails a log with one line changed, the event loop never held for long', async function () {
    const original = listJson;
    const changed = fake.imaLines.map((line) => `${line}\n`);
    changed[LINES - 1000] = (changed[LINES - 1000] as string).replace('/usr/lib/huge/', '/usr/lib/evil/');
    listJson = Buffer.from(JSON.stringify(changed.join('')));
    try {
      const { decision, worstStallMs } = await firstRound();
      expect(decision.history?.outcome).to.equal('fail');
      expect(decision.state.ima.nextEntry).to.equal(0);
      expect(worstStallMs).to.be.below(MAX_STALL_MS);
    } finally {
      listJson = original;
    }
  });

  it('a round whose reply the reader cannot queue is unanswered, not failed: retried, not a pass, no IMA line committed, its budget share given back', async function () {
    const full = new OffThreadJson({ threads: 1, maxWaiting: 0, script: FAULTY_WORKER });
    const holding = full.read(Buffer.from(paddedPast1MiB('"hangNow"'))).catch((error: unknown) => error);
    try {
      const { decision, budget } = await firstRound(full);
      // The verifier's own reader was full: nothing was learnt of the agent, so it is asked again (Keylime's retry), then FAILED not_reachable.
      expect(decision.history?.outcome).to.equal('retry');
      expect(decision.retries).to.equal(1);
      expect(decision.next).to.deep.include({ kind: 'poll' });
      expect(decision.state.operationalState).to.equal(OperationalState.GET_QUOTE_RETRY);
      expect(decision.state.ima.nextEntry).to.equal(0);
      expect(budget.inFlight).to.equal(0);
    } finally {
      await full.close();
      await holding;
    }
  });

  function polledAgent(replyBudget: ReplyBudget, reader: OffThreadJson): Promise<PolledAgent> {
    return loadedHugeReplyAgent(record(), { policies: { findRuntime: (name: string) => Promise.resolve(name === RUNTIME_POLICY.name ? RUNTIME_POLICY : undefined) }, verifierTls, replyBudget, offThreadJson: reader, requestTimeoutMs: 60_000 });
  }

  function record(): VerifierAgentRecord {
    return {
      ...pullAgentEnrolment({ agentId: 'huge-ima', port, tpmPolicy: '{"mask": "0x400"}', akTpm: fake.akTpm, mtlsCert: agentTls.certPem, supportedVersion: '2.6' }),
      runtimePolicyName: RUNTIME_POLICY.name,
      state: initialAgentState(),
      owner: 'me',
      lastAttemptAt: 0,
      enrolledAt: 0,
      enrolment: '1',
    };
  }
});
