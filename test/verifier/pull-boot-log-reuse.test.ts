import { scriptedPolledAgent } from './helpers/scripted-polled-agent.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { BootLogMemo } from '../../lib/attestation/boot-log-memo.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { PullDecision, PullSettings } from '../../lib/attestation/pull-decision.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { formatPcrMask } from '../../lib/attestation/tpm-policy.js';
import type { IntegrityQuoteRequest } from '../../lib/agent/agent-client.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import type { PolledAgent } from '../../lib/verifier/polled-agent.js';
import { runPullRound } from '../../lib/verifier/pull-round.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { vectorPath } from '../helpers/paths.js';

/** rust-keylime's test UEFI log: SHA-256 crypto-agile, PCRs 0-9 and 14, Secure Boot off. */
const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const BOOT_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];
const MASK = BOOT_PCRS.reduce((mask, pcr) => mask | (1 << pcr), 0);
const FULL = formatPcrMask(MASK);
const WITHOUT_PCR0 = formatPcrMask(MASK & ~1);
const REFSTATE = createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true });

/** Answers from a FakeAgent; `rewriteMask` may change the next request's mask before the agent sees it. */
class FakeConnection {
  readonly requests: IntegrityQuoteRequest[] = [];
  readonly replies: Record<string, unknown>[] = [];
  rewriteMask: ((mask: number) => number) | undefined;

  constructor(private readonly agent: FakeAgent) {}

  integrityQuoteReply(request: IntegrityQuoteRequest): Promise<unknown> {
    this.requests.push(request);
    const rewrite = this.rewriteMask ?? ((mask: number) => mask);
    this.rewriteMask = undefined;
    const reply = this.agent.reply({ nonce: request.nonce, mask: rewrite(Number.parseInt(request.mask, 16)), imaEntry: request.imaEntry, partial: request.partial });
    this.replies.push(reply as unknown as Record<string, unknown>);
    return Promise.resolve(reply);
  }

  judgeIntegrityQuote<T>(request: IntegrityQuoteRequest, judge: (results: unknown) => T | Promise<T>): Promise<T> {
    return this.integrityQuoteReply(request).then(judge);
  }
}

function polledAgent(fake: FakeAgent, connection: FakeConnection): PolledAgent {
  return scriptedPolledAgent({ agentId: 'boot-reuse', fake, connection, mask: FULL, policies: { tpmPolicy: { mask: FULL }, mbRefstate: REFSTATE } });
}

/** One process here: the rounds stamp on its clock. */
const hostNow = (): number => Date.now() / 1000;

describe('pull rounds without the unchanged boot log (issue 10)', function () {
  let fake: FakeAgent;
  let connection: FakeConnection;
  let agent: PolledAgent;
  let settings: PullSettings;

  /** One round, its decision applied as the scheduler does. */
  async function round(): Promise<PullDecision> {
    const decision = await runPullRound(agent, settings, hostNow);
    agent.state = decision.state;
    agent.retries = decision.retries;
    return decision;
  }

  beforeEach(async function () {
    fake = new FakeAgent({ bootLog: BOOT_LOG });
    connection = new FakeConnection(fake);
    agent = polledAgent(fake, connection);
    settings = { quoteInterval: 2, retryInterval: 2, maxRetries: 2, exponentialBackoff: true, severity: compileSeverityPolicy(), engine: {}, bootLogs: new BootLogMemo() };
    const first = await round();
    expect(first.history?.outcome).to.equal('pass');
    expect(connection.requests[0]?.mask).to.equal(FULL);
    expect(connection.replies[0]).to.have.property('mb_measurement_list');
  });

  it('asks later rounds without PCR 0: the agent sends no log, and they pass with the remembered one', async function () {
    for (let i = 1; i <= 3; i += 1) {
      const decision = await round();
      expect(decision.history).to.deep.include({ outcome: 'pass', failures: [] });
      expect(connection.requests[i]?.mask).to.equal(WITHOUT_PCR0);
      expect(connection.replies[i]).to.not.have.property('mb_measurement_list');
    }
    expect(agent.state.attestationCount).to.equal(4);
  });

  it('a TPM Reset (reboot: resetCount grows, PCRs replayed afresh) is not judged without the log: the same round asks again in full and passes', async function () {
    fake.boot();
    fake.clock = { ...fake.clock, resetCount: fake.clock.resetCount + 1 };
    const decision = await round();
    expect(connection.requests.slice(1).map((request) => request.mask)).to.deep.equal([WITHOUT_PCR0, FULL]);
    expect(connection.requests[2]?.nonce).to.not.equal(connection.requests[1]?.nonce);
    expect(connection.requests[2]?.imaEntry).to.equal(connection.requests[1]?.imaEntry);
    expect(decision.history).to.deep.include({ outcome: 'pass', failures: [] });
    expect(decision.history?.nonce).to.equal(connection.requests[2]?.nonce);
    // The log of the new boot is remembered: the next round goes without it again.
    await round();
    expect(connection.requests[3]?.mask).to.equal(WITHOUT_PCR0);
  });

  it('a reboot into other firmware (PCR 0 differs, the other boot PCRs as before) is judged on its own log: invalid_pcr_0, never a pass', async function () {
    fake.boot();
    fake.extend(0, new Uint8Array(createHash('sha256').update('other firmware').digest()));
    fake.clock = { ...fake.clock, resetCount: fake.clock.resetCount + 1 };
    const decision = await round();
    expect(connection.requests.slice(1).map((request) => request.mask)).to.deep.equal([WITHOUT_PCR0, FULL]);
    expect(decision.history?.outcome).to.equal('fail');
    expect(decision.history?.failures.map((failure) => failure.event_id)).to.include('measured_boot.invalid_pcr_0');
  });

  it('a TPM Restart (restartCount changed) is not judged without the log either', async function () {
    fake.clock = { ...fake.clock, restartCount: fake.clock.restartCount + 1 };
    const decision = await round();
    expect(connection.requests.slice(1).map((request) => request.mask)).to.deep.equal([WITHOUT_PCR0, FULL]);
    expect(decision.history?.outcome).to.equal('pass');
  });

  it('a remembered boot PCR missing from the quote is not judged with the remembered log: the round asks again in full', async function () {
    await round();
    connection.rewriteMask = (mask) => mask & ~(1 << 4);
    const decision = await round();
    expect(connection.requests.slice(2).map((request) => request.mask)).to.deep.equal([WITHOUT_PCR0, FULL]);
    expect(decision.history?.outcome).to.equal('pass');
  });

  it('a boot PCR extended at runtime fails with measured_boot.invalid_pcr_1, as with the log, and the record is dropped', async function () {
    fake.extend(1, new Uint8Array(createHash('sha256').update('runtime').digest()));
    const decision = await round();
    expect(connection.requests[1]?.mask).to.equal(WITHOUT_PCR0);
    expect(connection.requests).to.have.length(2);
    expect(decision.history?.outcome).to.equal('fail');
    expect(decision.history?.failures.map((failure) => failure.event_id)).to.include('measured_boot.invalid_pcr_1');
    expect(settings.bootLogs?.recall('boot-reuse')).to.equal(undefined);
  });

  it('a round from START (restart, take-over, reactivation) asks in full', async function () {
    agent.state = { ...agent.state, operationalState: OperationalState.START };
    await round();
    expect(connection.requests[1]?.mask).to.equal(FULL);
  });
});
