import { expect } from 'chai';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { evaluateQuote } from '../../lib/attestation/internal/evaluate-quote.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { decideQuoteReply, type PullSettings } from '../../lib/attestation/pull-decision.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { FakeAgent } from './fake-agent.js';
import { maskOf, policiesFor } from './engine-fixtures.js';

const NOW = 1_760_000_000;
const NONCE = 'Ai5M5SjYjnkyv4P7itH1';
const settings: PullSettings = { quoteInterval: 2, retryInterval: 3, maxRetries: 2, exponentialBackoff: true, severity: compileSeverityPolicy(), engine: {} };

/**
 * A pull round whose reply reports another boot time than the stored IMA progress was made in (the
 * node rebooted) and continues the list at the entry asked for: that entry belongs to another boot,
 * so the list is asked for again from entry 0 in the same round and replayed whole — the round is
 * never passed with the IMA check skipped.
 */
describe('pull: a reply from a rebooted node that continues the list', () => {
  it('is asked again from entry 0 at once, and the new boot\'s list is replayed and judged', () => {
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash 5.2');
    agent.measure('/usr/lib/systemd/systemd', 'systemd 255');
    const policies = policiesFor(agent);
    const polled = { ...initialAgentState(), operationalState: OperationalState.GET_QUOTE };
    const first = evaluateQuote({ state: polled, policies, reply: { ...agent.reply({ nonce: NONCE, mask: maskOf([]) }), boottime: 1000 }, nonce: NONCE, now: NOW });
    expect(first.failures).to.deep.equal([]);
    const state = { ...first.nextState, operationalState: OperationalState.GET_QUOTE };
    expect([state.ima.nextEntry, state.boottime]).to.deep.equal([3, 1000]);

    // The node reboots and runs a file no policy allows; its new list is longer than the entry asked for.
    agent.boot();
    agent.measure('/usr/bin/bash', 'bash 5.2');
    agent.measure('/usr/lib/systemd/systemd', 'systemd 255');
    agent.measure('/usr/sbin/sshd-backdoor', 'evil');
    const request = { kind: 'quote' as const, state, partial: true, imaEntry: 3, bootLog: undefined };
    const reply = { ...agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 3, partial: true }), boottime: 2000 };
    const judged = decideQuoteReply(request, { policies, reply, nonce: NONCE, imaEntry: 3, now: NOW + 1 }, settings);
    if (!('repeat' in judged)) {
      expect.fail(`the round was decided (${judged.history?.outcome}, failures ${JSON.stringify(judged.history?.failures)}) with the IMA list of another boot`);
    }
    expect(judged.repeat.imaEntry).to.equal(0);
    expect(judged.repeat.state.ima.nextEntry).to.equal(0);
    expect(judged.reason).to.match(/rebooted/);

    const again = { ...agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 0, partial: true }), boottime: 2000 };
    const decided = decideQuoteReply(judged.repeat, { policies, reply: again, nonce: NONCE, imaEntry: 0, now: NOW + 1 }, settings);
    expect('repeat' in decided).to.equal(false);
    if ('repeat' in decided) return;
    expect(decided.history).to.deep.include({ outcome: 'fail', imaMlEntry: 0, imaEntriesReceived: 4 });
    expect(decided.history?.failures.map((f) => [f.event_id, f.context['path']])).to.deep.equal([['ima.validation.ima-ng.not_in_allowlist', '/usr/sbin/sshd-backdoor']]);
    expect(decided.state.boottime).to.equal(2000);
  });

  it('a rebooted node with nothing wrong passes the repeated round, its whole new list verified', () => {
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash 5.2');
    agent.measure('/usr/lib/systemd/systemd', 'systemd 255');
    const policies = policiesFor(agent);
    const polled = { ...initialAgentState(), operationalState: OperationalState.GET_QUOTE };
    const first = evaluateQuote({ state: polled, policies, reply: { ...agent.reply({ nonce: NONCE, mask: maskOf([]) }), boottime: 1000 }, nonce: NONCE, now: NOW });
    const state = { ...first.nextState, operationalState: OperationalState.GET_QUOTE };
    agent.boot();
    agent.measure('/usr/bin/bash', 'bash 5.2');
    agent.measure('/usr/lib/systemd/systemd', 'systemd 255');
    const request = { kind: 'quote' as const, state, partial: true, imaEntry: 3, bootLog: undefined };
    const reply = { ...agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 3, partial: true }), boottime: 2000 };
    const judged = decideQuoteReply(request, { policies, reply, nonce: NONCE, imaEntry: 3, now: NOW + 1 }, settings);
    if (!('repeat' in judged)) {
      expect.fail('the round was decided with the IMA list of another boot');
    }
    const again = { ...agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 0, partial: true }), boottime: 2000 };
    const decided = decideQuoteReply(judged.repeat, { policies, reply: again, nonce: NONCE, imaEntry: 0, now: NOW + 1 }, settings);
    if ('repeat' in decided) expect.fail('repeated twice');
    expect(decided.history).to.deep.include({ outcome: 'pass', imaMlEntry: 0, imaEntriesReceived: 3, failures: [] });
    expect([decided.state.ima.nextEntry, decided.state.boottime]).to.deep.equal([3, 2000]);
  });

  it('an agent that sends no boottime (the Rust agent, ironlime\'s): the quote\'s TPM resetCount tells the reboot, and the new list is asked from entry 0', () => {
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash 5.2');
    agent.measure('/usr/lib/systemd/systemd', 'systemd 255');
    const policies = policiesFor(agent);
    const polled = { ...initialAgentState(), operationalState: OperationalState.GET_QUOTE };
    const first = evaluateQuote({ state: polled, policies, reply: agent.reply({ nonce: NONCE, mask: maskOf([]) }), nonce: NONCE, now: NOW });
    const state = { ...first.nextState, operationalState: OperationalState.GET_QUOTE };
    expect([state.ima.nextEntry, state.boottime]).to.deep.equal([3, 0]);
    // A power cycle: TPM Reset (resetCount + 1); the new boot measured the same files in another order.
    agent.boot();
    agent.clock = { ...agent.clock, resetCount: agent.clock.resetCount + 1, clock: agent.clock.clock + 60_000n };
    agent.measure('/usr/lib/systemd/systemd', 'systemd 255');
    agent.measure('/usr/bin/bash', 'bash 5.2');
    agent.measure('/usr/bin/bash', 'bash 5.2');
    const request = { kind: 'quote' as const, state, partial: true, imaEntry: 3, bootLog: undefined };
    const judged = decideQuoteReply(request, { policies, reply: agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 3, partial: true }), nonce: NONCE, imaEntry: 3, now: NOW + 1 }, settings);
    if (!('repeat' in judged)) {
      expect.fail(`the round was decided (${judged.history?.outcome}, failures ${JSON.stringify(judged.history?.failures.map((f) => f.event_id))}) with the IMA list of another boot`);
    }
    expect(judged.repeat.imaEntry).to.equal(0);
    expect(judged.reason).to.match(/TPM was reset/);
    const again = agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 0, partial: true });
    const decided = decideQuoteReply(judged.repeat, { policies, reply: again, nonce: NONCE, imaEntry: 0, now: NOW + 1 }, settings);
    if ('repeat' in decided) expect.fail('repeated twice');
    expect(decided.history).to.deep.include({ outcome: 'pass', imaMlEntry: 0, imaEntriesReceived: 4, failures: [] });
    expect(decided.state.ima.nextEntry).to.equal(4);
  });
});
