import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import type { AgentPolicies } from '../../lib/attestation/agent-policies.js';
import { initialAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import { evaluateQuote, type EvaluateQuoteResult } from '../../lib/attestation/internal/evaluate-quote.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { AgentQuoteReply } from '../../lib/attestation/internal/quote-reply.js';
import { MeasuredBootMemo } from '../../lib/attestation/mb-check-memo.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import type { MbRefstate } from '../../lib/mb/mb-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { vectorPath } from '../helpers/paths.js';
import { maskOf, policiesFor, runtimePolicyFor } from './engine-fixtures.js';
import { FakeAgent } from './fake-agent.js';

const NOW = 1_760_000_000;
const NONCE = 'mbNonce0123456789abc';
/** rust-keylime's test UEFI log: SHA-256 crypto-agile, PCRs 0-9 and 14, Secure Boot off. */
const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const BOOT_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];

const ids = (result: EvaluateQuoteResult): string[] => result.failures.map((failure) => failure.eventId);

describe('evaluateQuote with a real UEFI boot log (measured boot)', () => {
  let agent: FakeAgent;
  let refstate: MbRefstate;
  let policies: AgentPolicies;
  const polled: AgentAttestationState = { ...initialAgentState(), operationalState: OperationalState.GET_QUOTE };

  const evaluate = (
    state: AgentAttestationState,
    withPolicies: AgentPolicies,
    change: (reply: AgentQuoteReply) => AgentQuoteReply = (reply) => reply,
  ): EvaluateQuoteResult => {
    const reply = change(agent.reply({ nonce: NONCE, mask: maskOf(BOOT_PCRS), imaEntry: state.ima.nextEntry }));
    return evaluateQuote({ state, policies: withPolicies, reply, nonce: NONCE, now: NOW });
  };

  before(() => {
    refstate = createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true });
  });

  beforeEach(() => {
    agent = new FakeAgent({ bootLog: BOOT_LOG });
    agent.measure('/usr/bin/bash', 'bash');
    policies = policiesFor(agent, { mbRefstate: refstate, tpmPolicy: { mask: `0x${maskOf(BOOT_PCRS).toString(16)}` } });
  });

  it('passes a boot that replays to the quoted PCRs and matches the refstate', () => {
    const result = evaluate(polled, policies);
    expect(ids(result)).to.deep.equal([]);
    expect(result.claims.measuredBoot).to.deep.equal({ replayedPcrs: BOOT_PCRS, policy: 'example' });
  });

  it('with a memo, judges a repeated log from it (no check) and still fails a boot PCR the log no longer replays to', () => {
    const mbMemo = new MeasuredBootMemo();
    const round = (): EvaluateQuoteResult => {
      const reply = agent.reply({ nonce: NONCE, mask: maskOf(BOOT_PCRS), imaEntry: 0 });
      return evaluateQuote({ state: polled, policies, reply, nonce: NONCE, now: NOW, options: { mbMemo } });
    };
    const first = round();
    expect(ids(first)).to.deep.equal([]);
    const again = round();
    expect(ids(again)).to.deep.equal([]);
    expect(again.claims.measuredBoot).to.equal(first.claims.measuredBoot);
    expect(mbMemo.stats).to.deep.equal({ hits: 1, misses: 1 });
    agent.extend(4, new Uint8Array(32).fill(7));
    expect(ids(round())).to.deep.equal(['measured_boot.invalid_pcr_4']);
    expect(mbMemo.stats).to.deep.equal({ hits: 1, misses: 2 });
  });

  it('fails a changed boot component against the refstate (measured_boot.policy_example)', () => {
    const kernel = refstate.kernels[0];
    const changed: MbRefstate = {
      ...refstate,
      kernels: [{ ...kernel, vmlinuz_plain_sha256: `0x${'ab'.repeat(32)}` } as NonNullable<typeof kernel>],
    };
    const result = evaluate(polled, { ...policies, mbRefstate: changed });
    expect(result.verdict).to.equal('fail');
    expect(new Set(ids(result))).to.deep.equal(new Set(['measured_boot.policy_example']));
    expect(result.failures[0]?.recoverable).to.equal(true);
    expect(JSON.stringify(result.failures[0]?.context)).to.match(/vmlinuz|kernel/i);
  });

  it('fails a quoted boot PCR the log does not replay to (measured_boot.invalid_pcr_4)', () => {
    agent.extend(4, new Uint8Array(32).fill(7));
    const result = evaluate(polled, policies);
    expect(ids(result)).to.deep.equal(['measured_boot.invalid_pcr_4']);
    expect(result.failures[0]?.context).to.include({ pcr: 4, bank: 'sha256' });
  });

  it('evaluates the refstate only on the first pass with "once", every round with "always"', () => {
    const first = evaluate(polled, policies);
    expect(ids(first)).to.deep.equal([]);
    const bad: MbRefstate = { ...refstate, scrtm_and_bios: [{ platform_firmware: [{ sha256: `0x${'cd'.repeat(32)}` }] }] };
    const once = evaluate(first.nextState, { ...policies, mbRefstate: bad }, (reply) => ({ ...reply, pubkey: null }));
    expect(ids(once)).to.deep.equal([]);
    expect(once.claims.measuredBoot?.policy).to.equal(null);
    const always = evaluate(first.nextState, { ...policies, mbRefstate: bad, measuredBootEvaluate: 'always' });
    expect(always.verdict).to.equal('fail');
    expect(ids(always).every((id) => id === 'measured_boot.policy_example')).to.equal(true);
  });

  it('reports a log that does not parse, and boot PCRs quoted without a log', () => {
    const bogus = evaluate(polled, policies, (reply) => ({ ...reply, mb_measurement_list: Buffer.from('not an event log at all').toString('base64') }));
    expect(ids(bogus)).to.deep.equal(['measured_boot.parser.tpm2_eventlog.error']);
    const missing = evaluate(polled, policies, (reply) => ({ ...reply, mb_measurement_list: null }));
    expect(ids(missing)).to.deep.equal(BOOT_PCRS.map((pcr) => `pcr_validation.unused_pcr_${pcr}`));
  });

  it('accepts boot_aggregate from the verified boot PCRs when the policy does not list it', () => {
    const noAggregate = policiesFor(agent, {
      runtimePolicy: runtimePolicyFor(agent.imaLines, ['boot_aggregate']),
      tpmPolicy: { mask: `0x${maskOf(BOOT_PCRS).toString(16)}` },
    });
    expect(ids(evaluate(polled, noAggregate))).to.deep.equal([]);
    const withoutLog = evaluate(polled, noAggregate, (reply) => ({ ...reply, mb_measurement_list: null }));
    expect(ids(withoutLog)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
    expect(withoutLog.failures[0]?.context).to.include({ path: 'boot_aggregate', line: 1 });
  });
});
