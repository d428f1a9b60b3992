import { expect } from 'chai';
import { initialAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import type { AgentPolicies } from '../../lib/attestation/agent-policies.js';
import { evaluateQuote } from '../../lib/attestation/internal/evaluate-quote.js';
import type { AgentQuoteReply } from '../../lib/attestation/internal/quote-reply.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { decideQuoteReply, type PullDecision, type PullRequest, type PullSettings } from '../../lib/attestation/pull-decision.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { FakeAgent } from './fake-agent.js';
import { maskOf, policiesFor } from './engine-fixtures.js';

const NOW = 1_760_000_000;
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
 * One pull round as lib/verifier/pull-round.ts runs it: the request, then each repeat the engine asks
 * for at once, answered by `answer`, until a decision (at most `limit` requests, or the test fails).
 */
function pullRound(state: AgentAttestationState, policies: AgentPolicies, answer: (request: QuoteRequest) => AgentQuoteReply, limit = 5): { decision: PullDecision; asked: number[]; reasons: string[] } {
  let request: QuoteRequest = { kind: 'quote', state, partial: true, imaEntry: state.ima.nextEntry, bootLog: undefined };
  const asked: number[] = [];
  const reasons: string[] = [];
  for (;;) {
    asked.push(request.imaEntry);
    if (asked.length > limit) expect.fail(`asked ${asked.length} times in one round: ${reasons.join('; ')}`);
    const judged = decideQuoteReply(request, { policies, reply: answer(request), nonce: NONCE, imaEntry: request.imaEntry, now: NOW + 1 }, settings);
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
});
