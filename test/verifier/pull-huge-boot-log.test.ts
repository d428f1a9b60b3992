import type { Server } from 'node:https';
import { expect } from 'chai';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import type { PullDecision } from '../../lib/attestation/pull-decision.js';
import { OffThreadJson } from '../../lib/http/off-thread-json.js';
import { ReplyBudget } from '../../lib/http/reply-budget.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { MAX_EVENT_LOG_EVENTS, parseEventLog } from '../../lib/mb/parse-event-log.js';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import type { PolledAgent } from '../../lib/verifier/polled-agent.js';
import { runPullRound } from '../../lib/verifier/pull-round.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import type { StoredMbPolicy, Versioned } from '../../lib/verifier/verifier-policy-repository.js';
import { watchEventLoopStalls } from '../helpers/event-loop-stalls.js';
import { maskOf } from '../attestation/engine-fixtures.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { grownBootLog, grownBootLogOfEvents, REAL_BOOT_LOG } from '../mb/huge-boot-log.js';
import { hugeReplyServer, loadedHugeReplyAgent, splicedReply } from './helpers/huge-reply-server.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';
import { ROUND_TEST_SETTINGS } from './helpers/pull-settings.js';

/** A hostile agent's boot log: the real one grown to 40 MiB, some 560,000 events (53 MiB of base64: a pull reply may be 64 MiB). */
const HUGE_LOG_BYTES = 40 * 1024 * 1024;
/** A stall the test allows the verifier's event loop: decoding, parsing, replaying and evaluating the huge log in one go held it for seconds. */
const MAX_STALL_MS = 500;
const BOOT_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];
/** The refstate made from the real log, as stored: the repeated event is a GRUB file it accepts. */
const MB_POLICY: Versioned<StoredMbPolicy> = {
  name: 'huge-boot-policy',
  mbPolicy: JSON.stringify(createRefstate(parseEventLog(REAL_BOOT_LOG), { withoutSecureBoot: true })),
  version: '1',
};

const settings = ROUND_TEST_SETTINGS;

/**
 * Issue 10/13: one enrolled pull agent answering with a boot log of tens of MiB (a root user on a
 * compromised node can extend a PCR at runtime as often as it likes, and log each extend) must not
 * stall the verifier's event loop — the other agents' rounds, the push routes, /health — for the
 * seconds its decoding, parsing, replay and policy evaluation took, nor cost it 25 s of CPU and 2 GB of
 * heap: it fails at once, undecoded. A log of as many events as a boot log may hold is judged a slice at
 * a time and passes. The round runs as the pull loop runs it (a real `AgentClient` over TLS, its reply
 * budget and off-thread JSON reader, the real engine).
 */
describe('pull round: a huge boot log is judged without stalling the event loop', function () {
  this.timeout(180_000);
  const agentTls = createSelfSignedServerCertificate({ commonName: 'agent', sans: ['127.0.0.1'] });
  const verifierTls = createSelfSignedServerCertificate({ commonName: 'verifier' });
  let fake: FakeAgent;
  /** The boot log as a JSON string token, built once per case: the server only splices it in. */
  let logJson: Buffer;
  let server: Server;
  let port: number;
  const offThreadJson = new OffThreadJson();

  /** The agent sends `log`; its TPM's boot PCRs are `replayed`'s (the fake agent cannot parse a log over the bound). */
  function sendBootLog(log: Uint8Array, replayed = log): void {
    fake = new FakeAgent({ bootLog: replayed });
    logJson = Buffer.from(JSON.stringify(Buffer.from(log).toString('base64')));
  }

  before(async function () {
    sendBootLog(REAL_BOOT_LOG);
    ({ server, port } = await hugeReplyServer(agentTls, (query) => {
      const results = fake.reply({ nonce: query.get('nonce') ?? '', mask: Number(query.get('mask')), imaEntry: Number(query.get('ima_ml_entry') ?? 0), partial: false, leaveBootLogOut: true });
      return splicedReply({ ...results, mb_measurement_list: '' }, 'mb_measurement_list', logJson);
    }));
  });

  after(async function () {
    server.close();
    await offThreadJson.close();
  });

  /** One pull round with a 1 ms timer running: its decision, the timer's turns and the worst event-loop stall. */
  async function roundWithTimer(): Promise<{ decision: PullDecision; turns: number; worstStallMs: number }> {
    const agent = await polledAgent(new ReplyBudget(128 * 1024 * 1024));
    let turns = 0;
    const ticker = setInterval(() => (turns += 1), 1);
    const watch = watchEventLoopStalls();
    try {
      const decision = await runPullRound(agent, settings, () => 1_760_000_000);
      return { decision, turns, worstStallMs: watch.stop() };
    } finally {
      watch.stop();
      clearInterval(ticker);
      agent.connection.close();
    }
  }

  it('fails a 40 MiB log at once, undecoded (measured_boot.parser.tpm2_eventlog.error naming the bound), the event loop never held for long', async function () {
    sendBootLog(grownBootLog(HUGE_LOG_BYTES), REAL_BOOT_LOG);
    const { decision, turns, worstStallMs } = await roundWithTimer();
    expect(decision.history?.outcome).to.equal('fail');
    expect(decision.history?.failures.map((f) => f.event_id)).to.deep.equal(['measured_boot.parser.tpm2_eventlog.error']);
    expect(JSON.stringify(decision.history?.failures[0]?.context)).to.include('characters, more than the');
    expect(turns, 'timer turns while the round ran').to.be.above(20);
    expect(worstStallMs, 'worst event-loop stall, ms').to.be.below(MAX_STALL_MS);
  });

  it(`passes a log of ${MAX_EVENT_LOG_EVENTS} events, every boot PCR replayed, judged while a 1 ms timer keeps running`, async function () {
    sendBootLog(grownBootLogOfEvents(MAX_EVENT_LOG_EVENTS));
    const { decision, turns } = await roundWithTimer();
    expect(decision.history?.outcome, JSON.stringify(decision.history?.failures.slice(0, 3))).to.equal('pass');
    expect(decision.state.attestationCount).to.equal(1);
    expect(turns, 'timer turns while the round ran').to.be.above(5);
  });

  function polledAgent(replyBudget: ReplyBudget): Promise<PolledAgent> {
    return loadedHugeReplyAgent(record(), { policies: { findRuntime: () => Promise.resolve(undefined), findMb: (name: string) => Promise.resolve(name === MB_POLICY.name ? MB_POLICY : undefined) }, verifierTls, replyBudget, offThreadJson, requestTimeoutMs: 120_000 });
  }

  function record(): VerifierAgentRecord {
    const mask = `0x${maskOf(BOOT_PCRS).toString(16)}`;
    return {
      ...pullAgentEnrolment({ agentId: 'huge-boot-log', port, tpmPolicy: `{"mask": "${mask}"}`, akTpm: fake.akTpm, mtlsCert: agentTls.certPem, supportedVersion: '2.6' }),
      mbPolicyName: MB_POLICY.name,
      state: initialAgentState(),
      owner: 'me',
      lastAttemptAt: 0,
      enrolledAt: 0,
      enrolment: '1',
    };
  }
});
