import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { initialAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import type { AgentPolicies } from '../../lib/attestation/agent-policies.js';
import { evaluateQuote } from '../../lib/attestation/internal/evaluate-quote.js';
import type { AgentQuoteReply } from '../../lib/attestation/internal/quote-reply.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { beginRound, decideQuoteReply, type PullDecision, type PullRequest, type PullSettings } from '../../lib/attestation/pull-decision.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { BootLogMemo } from '../../lib/attestation/boot-log-memo.js';
import type { PullAgent } from '../../lib/attestation/pull-boot-log.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { vectorPath } from '../helpers/paths.js';
import { FakeAgent } from './fake-agent.js';
import { maskOf, policiesFor } from './engine-fixtures.js';

const NOW = 1_760_000_000;
const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const NONCE = 'Ai5M5SjYjnkyv4P7itH1';
const settings: PullSettings = { quoteInterval: 2, retryInterval: 3, maxRetries: 2, exponentialBackoff: true, severity: compileSeverityPolicy(), engine: {} };
type QuoteRequest = Extract<PullRequest, { kind: 'quote' }>;

/** An agent that passed a first round (two files, then boot_aggregate: entry 3 is next), reporting `boottime` when given. */
function passedOnce(boottime?: number): { agent: FakeAgent; policies: AgentPolicies; state: AgentAttestationState } {
  const agent = new FakeAgent();
  agent.measure('/usr/bin/bash', 'bash 5.2');
  agent.measure('/usr/lib/systemd/systemd', 'systemd 255');
  const policies = policiesFor(agent);
  const polled = { ...initialAgentState(), operationalState: OperationalState.GET_QUOTE };
  const reply = { ...agent.reply({ nonce: NONCE, mask: maskOf([]) }), ...(boottime === undefined ? {} : { boottime }) };
  const first = evaluateQuote({ state: polled, policies, reply, nonce: NONCE, now: NOW });
  expect(first.failures).to.deep.equal([]);
  const state = { ...first.nextState, operationalState: OperationalState.GET_QUOTE };
  expect([state.ima.nextEntry, state.boottime]).to.deep.equal([3, boottime ?? 0]);
  return { agent, policies, state };
}

/**
 * One pull round as lib/verifier/pull-round.ts runs it: the request (`first`, or one for the state's
 * next entry), then each repeat the engine asks for at once, answered by `answer`, until a decision
 * (at most five requests, or the test fails).
 */
function pullRound(
  state: AgentAttestationState,
  policies: AgentPolicies,
  answer: (request: QuoteRequest) => AgentQuoteReply,
  options: { readonly first?: QuoteRequest; readonly settings?: PullSettings; readonly now?: number } = {},
): { decision: PullDecision; asked: number[]; reasons: string[] } {
  let request: QuoteRequest = options.first ?? { kind: 'quote', state, partial: true, imaEntry: state.ima.nextEntry, bootLog: undefined };
  const asked: number[] = [];
  const reasons: string[] = [];
  for (;;) {
    asked.push(request.imaEntry);
    if (asked.length > 5) expect.fail(`asked ${asked.length} times in one round: ${reasons.join('; ')}`);
    const judged = decideQuoteReply(request, { policies, reply: answer(request), nonce: NONCE, imaEntry: request.imaEntry, now: options.now ?? NOW + 1 }, options.settings ?? settings);
    if (!('repeat' in judged)) return { decision: judged, asked, reasons };
    reasons.push(judged.reason);
    request = judged.repeat;
  }
}

/**
 * A pull round whose reply reports another boot time than the stored IMA progress was made in (the
 * node rebooted) and continues the list at the entry asked for: that entry belongs to another boot,
 * so the list is asked for again from entry 0 in the same round and replayed whole — the round is
 * never passed with the IMA check skipped.
 */
describe('pull: a reply from a rebooted node that continues the list', () => {
  it('is asked again from entry 0 at once, and the new boot\'s list is replayed and judged', () => {
    const { agent, policies, state } = passedOnce(1000);
    // The node reboots and runs a file no policy allows; its new list is longer than the entry asked for.
    agent.boot();
    agent.measure('/usr/bin/bash', 'bash 5.2');
    agent.measure('/usr/lib/systemd/systemd', 'systemd 255');
    agent.measure('/usr/sbin/sshd-backdoor', 'evil');
    const { decision, asked, reasons } = pullRound(state, policies, (r) => ({ ...agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: r.imaEntry, partial: true }), boottime: 2000 }));
    expect(asked).to.deep.equal([3, 0]);
    expect(reasons[0]).to.match(/rebooted/);
    expect(decision.history).to.deep.include({ outcome: 'fail', imaMlEntry: 0, imaEntriesReceived: 4 });
    expect(decision.history?.failures.map((f) => [f.event_id, f.context['path']])).to.deep.equal([['ima.validation.ima-ng.not_in_allowlist', '/usr/sbin/sshd-backdoor']]);
    expect(decision.state.boottime).to.equal(2000);
  });

  it('a rebooted node with nothing wrong passes the repeated round, its whole new list verified', () => {
    const { agent, policies, state } = passedOnce(1000);
    agent.boot();
    agent.measure('/usr/bin/bash', 'bash 5.2');
    agent.measure('/usr/lib/systemd/systemd', 'systemd 255');
    const { decision, asked } = pullRound(state, policies, (r) => ({ ...agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: r.imaEntry, partial: true }), boottime: 2000 }));
    expect(asked).to.deep.equal([3, 0]);
    expect(decision.history).to.deep.include({ outcome: 'pass', imaMlEntry: 0, imaEntriesReceived: 3, failures: [] });
    expect([decision.state.ima.nextEntry, decision.state.boottime]).to.deep.equal([3, 2000]);
  });

  it('an agent that reports a new boottime in every reply is asked twice a round, and each round is judged with its IMA list checked', () => {
    const { agent, policies, state } = passedOnce(1000);
    let boottime = 1000;
    const answer = (r: QuoteRequest): AgentQuoteReply => ({ ...agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: r.imaEntry, partial: true }), boottime: ++boottime });
    const healthy = pullRound(state, policies, answer);
    expect(healthy.decision.history).to.deep.include({ outcome: 'pass', imaMlEntry: 0 });
    agent.measure('/usr/sbin/sshd-backdoor', 'evil');
    const next = pullRound(healthy.decision.state, policies, answer);
    expect(next.asked).to.deep.equal([3, 0]);
    expect(next.decision.history?.failures.map((f) => f.event_id)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
  });

  it('an agent that sends no boottime (the Rust agent, ironlime\'s): the quote\'s TPM resetCount tells the reboot, and the new list is asked from entry 0', () => {
    const { agent, policies, state } = passedOnce();
    // A power cycle: TPM Reset (resetCount + 1); the new boot measured the same files in another order.
    agent.boot();
    agent.clock = { ...agent.clock, resetCount: agent.clock.resetCount + 1, clock: agent.clock.clock + 60_000n };
    agent.measure('/usr/lib/systemd/systemd', 'systemd 255');
    agent.measure('/usr/bin/bash', 'bash 5.2');
    agent.measure('/usr/bin/bash', 'bash 5.2');
    const answer = (r: QuoteRequest): AgentQuoteReply => agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: r.imaEntry, partial: true });
    const { decision, asked, reasons } = pullRound(state, policies, answer);
    expect(asked).to.deep.equal([3, 0]);
    expect(reasons[0]).to.match(/TPM was reset/);
    expect(decision.history).to.deep.include({ outcome: 'pass', imaMlEntry: 0, imaEntriesReceived: 4, failures: [] });
    expect(decision.state.ima.nextEntry).to.equal(4);
    // The same node, rebooted again into a file no policy allows: asked from entry 0, and failed.
    agent.boot();
    agent.clock = { ...agent.clock, resetCount: agent.clock.resetCount + 1, clock: agent.clock.clock + 60_000n };
    for (const path of ['/usr/bin/bash', '/usr/lib/systemd/systemd', '/usr/bin/bash', '/usr/sbin/sshd-backdoor']) agent.measure(path, path === '/usr/sbin/sshd-backdoor' ? 'evil' : path.endsWith('bash') ? 'bash 5.2' : 'systemd 255');
    const tampered = pullRound(decision.state, policies, answer);
    expect(tampered.asked).to.deep.equal([4, 0]);
    expect(tampered.decision.history?.failures.map((f) => f.event_id)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
  });

  it('an agent asked without its boot log (remembered) is asked again from entry 0 with it: the reboot costs one repeat, not two', () => {
    const agent = new FakeAgent({ bootLog: BOOT_LOG });
    agent.measure('/usr/bin/bash', 'bash 5.2');
    const mask = '0x47ff';
    const policies = policiesFor(agent, { tpmPolicy: { mask }, mbRefstate: createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true }) });
    const withMemo: PullSettings = { ...settings, bootLogs: new BootLogMemo() };
    const pullAgent: PullAgent = { agentId: 'a1', policies, mask };
    let boottime = 1000;
    const answer = (r: QuoteRequest): AgentQuoteReply => ({ ...agent.reply({ nonce: NONCE, mask: Number.parseInt(r.bootLog?.mask ?? mask, 16), imaEntry: r.imaEntry, partial: false }), boottime });
    // Each round from GET_QUOTE (V delivered after the first pass).
    const round = (stored: AgentAttestationState, now: number) => {
      const state = { ...stored, operationalState: OperationalState.GET_QUOTE };
      const first = beginRound({ state, retries: 0 }, { agent: pullAgent, settings: withMemo, now });
      if (first.kind !== 'quote') return expect.fail('not a quote request');
      return { withoutLog: first.bootLog?.remembered !== undefined, ...pullRound(state, policies, answer, { first, settings: withMemo, now }) };
    };
    const passed = round({ ...initialAgentState(), operationalState: OperationalState.GET_QUOTE }, NOW);
    expect(passed.decision.history?.failures).to.deep.equal([]);
    const again = round(passed.decision.state, NOW + 2);
    expect([again.withoutLog, again.asked, again.decision.history?.outcome]).to.deep.equal([true, [2], 'pass']);

    agent.boot();
    agent.clock = { ...agent.clock, resetCount: agent.clock.resetCount + 1, clock: agent.clock.clock + 60_000n };
    agent.measure('/usr/bin/bash', 'bash 5.2');
    agent.measure('/usr/bin/bash', 'bash 5.2');
    boottime = 2000;
    const rebooted = round(again.decision.state, NOW + 4);
    expect(rebooted.withoutLog).to.equal(true);
    expect(rebooted.asked, rebooted.reasons.join('; ')).to.deep.equal([2, 0]);
    expect(rebooted.decision.history).to.deep.include({ outcome: 'pass', imaMlEntry: 0, failures: [] });
  });
});
