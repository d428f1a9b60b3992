import { expect } from 'chai';
import type { AgentPolicies } from '../../lib/attestation/agent-policies.js';
import { initialAgentState, parseAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import { evaluateQuote, type EvaluateQuoteResult } from '../../lib/attestation/internal/evaluate-quote.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { AgentQuoteReply } from '../../lib/attestation/internal/quote-reply.js';
import { akPublicKey } from '../../lib/attestation/agent-policies.js';
import { verifyQuoteSignatureAhead, type SignatureVerdict } from '../../lib/tpm/signature-verdict.js';
import { FakeAgent } from './fake-agent.js';
import { maskOf, policiesFor, runtimePolicyFor } from './engine-fixtures.js';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { ImaKeyring } from '../../lib/ima/ima-keyring.js';
import { generateKeyPairSync } from 'node:crypto';
import { emptyRuntimePolicy, parseRuntimePolicy, POLICY_GENERATOR } from '../../lib/ima/runtime-policy.js';

const NOW = 1_760_000_000;
const NONCE = 'Ai5M5SjYjnkyv4P7itH1';

interface Round {
  readonly reply: AgentQuoteReply;
  readonly result: EvaluateQuoteResult;
}

function round(
  agent: FakeAgent,
  state: AgentAttestationState,
  policies: AgentPolicies,
  change: (reply: AgentQuoteReply) => AgentQuoteReply = (reply) => reply,
  nonce = NONCE,
): Round {
  const reply = change(
    agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: state.ima.nextEntry, partial: state.publicKey !== null }),
  );
  return { reply, result: evaluateQuote({ state, policies, reply, nonce, now: NOW }) };
}

const ids = (result: EvaluateQuoteResult): string[] => result.failures.map((failure) => failure.eventId);

describe('evaluateQuote: pull-mode attestation rounds', () => {
  let agent: FakeAgent;
  let policies: AgentPolicies;
  const polled = { ...initialAgentState(), operationalState: OperationalState.GET_QUOTE };

  beforeEach(() => {
    agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash 5.2');
    agent.measure('/usr/lib/systemd/systemd', 'systemd 255');
    policies = policiesFor(agent);
  });

  it('passes good evidence and advances the state', () => {
    const { result } = round(agent, polled, policies);
    expect(ids(result)).to.deep.equal([]);
    expect(result.verdict).to.equal('pass');
    expect(result.provideV).to.equal(true);
    expect(result.stopPolling).to.equal(false);
    const next = result.nextState;
    expect(next).to.include({
      operationalState: OperationalState.PROVIDE_V,
      attestationCount: 1,
      lastReceivedQuote: NOW,
      lastSuccessfulAttestation: NOW,
      publicKey: agent.nkPem,
      hashAlg: 'sha256',
      encAlg: 'rsa2048',
      signAlg: 'rsassa',
      severityLevel: null,
    });
    expect(next.ima.nextEntry).to.equal(3);
    expect(next.ima.pcr10.sha256).to.equal(Buffer.from(agent.pcrs.get(10) as Uint8Array).toString('hex'));
    expect(next.tpmClockInfo).to.deep.equal({ clock: agent.clock.clock.toString(), resetCount: 3, restartCount: 0, safe: true });
    expect(result.claims.quote?.pcrs['16']).to.equal(Buffer.from(agent.pcrs.get(16) as Uint8Array).toString('hex'));
    expect(result.claims.ima).to.deep.equal({ firstEntry: 0, entriesChecked: 3, entriesVerified: 3, nextEntry: 3 });
    expect(parseAgentState(JSON.parse(JSON.stringify(next)))).to.deep.equal(next);
  });

  it('fails a quote whose signature verifies when the AK is a 1024-bit RSA key (an enrolment stored before such AKs were refused)', () => {
    const weak = new FakeAgent({ akRsaBits: 1024 });
    const { result } = round(weak, polled, policiesFor(weak));
    expect(result.verdict).to.equal('fail');
    expect(ids(result)).to.deep.equal(['qoute_validation.quote_validation']);
    expect(JSON.stringify(result.failures)).to.match(/the AK is a 1024-bit RSA key/);
    // Not a "malformed" AK: it parses; it is a key no TPM key can be trusted as.
    expect(result.failures[0]?.context).to.include({ check: 'weak-key' });
  });

  it('checks only the new IMA entries on the next round and keeps the cached NK key', () => {
    const first = round(agent, polled, policies).result.nextState;
    agent.measure('/usr/bin/ls', 'ls 9.4');
    policies = policiesFor(agent);
    const second = round(agent, first, policies);
    expect(second.reply.ima_measurement_list_entry).to.equal(3);
    expect(second.reply.pubkey).to.equal(undefined);
    expect(ids(second.result)).to.deep.equal([]);
    expect(second.result.claims.ima).to.deep.equal({ firstEntry: 3, entriesChecked: 1, entriesVerified: 1, nextEntry: 4 });
    expect(second.result.provideV).to.equal(false);
    expect(second.result.nextState.attestationCount).to.equal(2);
    // a round with nothing new replays nothing and still passes
    const third = round(agent, second.result.nextState, policies);
    expect(third.reply.ima_measurement_list).to.equal('');
    expect(ids(third.result)).to.deep.equal([]);
    expect(third.result.nextState.ima.nextEntry).to.equal(4);
  });

  it('fails an IMA entry outside the runtime policy and resets the IMA state', () => {
    const first = round(agent, polled, policies).result.nextState;
    agent.measure('/tmp/evil', 'rootkit');
    const { result } = round(agent, first, policies);
    expect(ids(result)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
    expect(result.failures[0]?.context).to.include({ line: 4, path: '/tmp/evil' });
    expect(result.verdict).to.equal('fail');
    expect(result.stopPolling).to.equal(true);
    expect(result.nextState).to.include({
      operationalState: OperationalState.INVALID_QUOTE,
      severityLevel: 6,
      lastEventId: 'ima.validation.ima-ng.not_in_allowlist',
      attestationCount: 1,
    });
    expect(result.nextState.ima.nextEntry).to.equal(0);
  });

  it('fails a PCR outside tpm_policy and PCRs the quote lacks', () => {
    const expected0 = Buffer.from(agent.pcrs.get(0) as Uint8Array).toString('hex');
    policies = policiesFor(agent, { tpmPolicy: { 0: ['ab'.repeat(32), expected0], 1: ['cd'.repeat(32)], mask: '0x403' } });
    const reply = agent.reply({ nonce: NONCE, mask: maskOf([0, 1]) });
    const result = evaluateQuote({ state: polled, policies, reply, nonce: NONCE, now: NOW });
    expect(ids(result)).to.deep.equal(['pcr_validation.invalid_pcr_1']);
    expect(result.failures[0]?.recoverable).to.equal(true);
    expect(result.failures[0]?.context).to.deep.equal({
      context: 'PCR value is not in allowlist',
      got: Buffer.from(agent.pcrs.get(1) as Uint8Array).toString('hex'),
      expected: ['cd'.repeat(32)],
    });
    const withoutPcr1 = agent.reply({ nonce: NONCE, mask: maskOf([0]) });
    const missing = evaluateQuote({ state: polled, policies, reply: withoutPcr1, nonce: NONCE, now: NOW });
    expect(ids(missing)).to.deep.equal(['pcr_validation.missing_pcrs']);
    expect(missing.failures[0]?.context).to.deep.equal({ context: 'PCRs are missing in quote', data: [1] });
  });

  it('refuses a stale nonce and a quote signed by another AK (qoute_validation.quote_validation)', () => {
    const stale = round(agent, polled, policies, (reply) => reply, 'AnotherNonce12345678').result;
    expect(ids(stale)).to.deep.equal(['qoute_validation.quote_validation']);
    expect(stale.failures[0]).to.include({ recoverable: false, severityLabel: 'emergency' });
    expect(stale.failures[0]?.context).to.include({ check: 'nonce' });
    const other = new FakeAgent({ identity: 1 });
    const forged = evaluateQuote({
      state: polled,
      policies: { ...policies, akTpm: other.akTpm },
      reply: agent.reply({ nonce: NONCE, mask: maskOf([]) }),
      nonce: NONCE,
      now: NOW,
    });
    expect(ids(forged)).to.deep.equal(['qoute_validation.quote_validation']);
    expect(forged.failures[0]?.context).to.include({ check: 'signature' });
    expect(forged.nextState.attestationCount).to.equal(0);
    expect(forged.stopPolling).to.equal(true);
    const garbled = round(agent, polled, policies, (reply) => ({ ...reply, quote: 'rnot:a:quote' })).result;
    expect(ids(garbled)).to.deep.equal(['qoute_validation.quote_validation']);
    expect(garbled.failures[0]?.context).to.include({ check: 'malformed' });
  });

  it('fails PCR 16 when it does not bind the NK key the agent sent, and needs a key', () => {
    const other = new FakeAgent({ identity: 1 });
    const { result } = round(agent, polled, policies, (reply) => ({ ...reply, pubkey: other.nkPem }));
    expect(ids(result)).to.deep.equal(['pcr_validation.invalid_pcr_16']);
    expect(result.failures[0]?.recoverable).to.equal(true);
    const noKey = round(agent, polled, policies, (reply) => ({ ...reply, pubkey: null })).result;
    expect(ids(noKey)).to.deep.equal(['qoute_validation.no_pubkey']);
  });

  it('refuses a TPM clock that went backwards', () => {
    const first = round(agent, polled, policies).result.nextState;
    agent.clock = { ...agent.clock, clock: 10_000n };
    const { result } = round(agent, first, policies);
    expect(ids(result)).to.deep.equal(['qoute_validation.quote_validation']);
    expect(result.failures[0]?.context).to.include({ check: 'clock' });
    expect(result.nextState.tpmClockInfo).to.deep.equal(first.tpmClockInfo);
    agent.clock = { ...agent.clock, clock: 500_000n, resetCount: 2 };
    const reset = round(agent, first, policies).result;
    expect(String(reset.failures[0]?.context['error'])).to.match(/resetCount went back from 3 to 2/);
  });

  it('refuses algorithms the tenant did not accept, with alias normalisation for enc_alg', () => {
    const hash = evaluateQuote({
      state: polled,
      policies: { ...policies, acceptTpmHashAlgs: ['sha384'] },
      reply: agent.reply({ nonce: NONCE, mask: maskOf([]) }),
      nonce: NONCE,
      now: NOW,
    });
    expect(ids(hash)).to.deep.equal(['qoute_validation.invalid_hash_alg']);
    expect(hash.failures[0]?.context).to.deep.equal({ message: 'TPM Quote is using an unaccepted hash algorithm: sha256', data: 'sha256' });
    expect(hash.nextState.hashAlg).to.equal('sha256');
    const enc = round(agent, polled, { ...policies, acceptTpmEncryptionAlgs: ['ecc'] }).result;
    expect(ids(enc)).to.deep.equal(['qoute_validation.invalid_enc_alg']);
    const sign = round(agent, polled, { ...policies, acceptTpmSigningAlgs: ['ecdsa'] }).result;
    expect(ids(sign)).to.deep.equal(['qoute_validation.invalid_sign_alg']);
    expect(round(agent, polled, { ...policies, acceptTpmEncryptionAlgs: ['rsa'] }).result.verdict).to.equal('pass');
  });

  it('rejects an IMA list from another entry than the one asked for', () => {
    const first = round(agent, polled, policies).result.nextState;
    agent.measure('/usr/bin/ls', 'ls');
    const { result } = round(agent, first, policiesFor(agent), () =>
      agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 2, partial: true }),
    );
    expect(ids(result)).to.deep.equal(['qoute_validation.invalid_ima_entry_nb']);
    expect(result.failures[0]?.context).to.include({ got: 2, expected: 3 });
    expect(result.nextState.ima.nextEntry).to.equal(0);
  });

  it('after a reboot (boottime changed) resets IMA and replays from entry 0 next round', () => {
    const first = { ...round(agent, polled, policies).result.nextState, boottime: 1000 };
    const rebooted = round(agent, first, policies, (reply) => ({ ...reply, boottime: 2000 })).result;
    expect(ids(rebooted)).to.deep.equal([]);
    expect(rebooted.claims.ima).to.equal(null);
    expect(rebooted.nextState.ima.nextEntry).to.equal(0);
    expect(rebooted.nextState.boottime).to.equal(2000);
  });

  it('rejects a malformed reply as qoute_validation.invalid_data', () => {
    const result = evaluateQuote({
      state: polled,
      policies,
      reply: { quote: 42 } as unknown as AgentQuoteReply,
      nonce: NONCE,
      now: NOW,
    });
    expect(ids(result)).to.deep.equal(['qoute_validation.invalid_data']);
    expect(result.nextState.lastReceivedQuote).to.equal(NOW);
  });

  it('needs PCR 10 when a runtime policy is enrolled, and the IMA list when PCR 10 is quoted', () => {
    const noPcr10 = evaluateQuote({ state: polled, policies, reply: agent.reply({ nonce: NONCE, mask: 0 }), nonce: NONCE, now: NOW });
    expect(ids(noPcr10)).to.deep.equal(['pcr_validation.missing_pcrs']);
    expect(noPcr10.failures[0]?.context).to.deep.equal({ context: 'PCRs are missing in quote', data: [10] });
    const noList = round(agent, polled, policies, (reply) => ({ ...reply, ima_measurement_list: null })).result;
    expect(ids(noList)).to.deep.equal(['pcr_validation.unused_pcr_10']);
  });

  it('needs PCR 10 for a runtime policy without meta.generator (Keylime\'s own test policies omit it), so a node cannot leave its IMA list unchecked', () => {
    const written = JSON.parse(JSON.stringify(runtimePolicyFor(agent.imaLines).policy)) as { meta: Record<string, unknown> };
    delete written.meta['generator'];
    const withoutGenerator = { ...policies, runtimePolicy: compileRuntimePolicy(parseRuntimePolicy(written)) };
    expect(withoutGenerator.runtimePolicy.policy.meta.generator).to.equal(POLICY_GENERATOR.Unknown);
    agent.measure('/tmp/not-in-policy', 'tampered');
    const noPcr10 = evaluateQuote({ state: polled, policies: withoutGenerator, reply: agent.reply({ nonce: NONCE, mask: 0 }), nonce: NONCE, now: NOW });
    expect(noPcr10.verdict).to.equal('fail');
    expect(ids(noPcr10)).to.deep.equal(['pcr_validation.missing_pcrs']);
    expect(noPcr10.failures[0]?.context).to.deep.equal({ context: 'PCRs are missing in quote', data: [10] });
  });

  it('needs PCR 10 for a policy marked EmptyAllowList that lists digests: the generator does not make it empty', () => {
    const written = JSON.parse(JSON.stringify(runtimePolicyFor(agent.imaLines).policy)) as { meta: Record<string, unknown> };
    written.meta['generator'] = POLICY_GENERATOR.EmptyAllowList;
    const marked = { ...policies, runtimePolicy: compileRuntimePolicy(parseRuntimePolicy(written)) };
    agent.measure('/tmp/not-in-policy', 'tampered');
    const noPcr10 = evaluateQuote({ state: polled, policies: marked, reply: agent.reply({ nonce: NONCE, mask: 0 }), nonce: NONCE, now: NOW });
    expect(noPcr10.verdict).to.equal('fail');
    expect(ids(noPcr10)).to.deep.equal(['pcr_validation.missing_pcrs']);
    // Keylime's empty policy itself (nothing listed) still leaves PCR 10 optional.
    const empty = { ...policies, runtimePolicy: compileRuntimePolicy(parseRuntimePolicy(JSON.stringify(emptyRuntimePolicy()))) };
    expect(evaluateQuote({ state: polled, policies: empty, reply: agent.reply({ nonce: NONCE, mask: 0 }), nonce: NONCE, now: NOW }).verdict).to.equal('pass');
  });

  it('with IMA signature keys and no runtime policy, an unsigned file is refused as against Keylime\'s empty policy', () => {
    const keyring = new ImaKeyring();
    keyring.add(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const keysOnly = { ...policies, runtimePolicy: null, imaKeyring: keyring };
    agent.measure('/tmp/unsigned', 'tampered');
    const { result } = round(agent, polled, keysOnly);
    expect(result.verdict).to.equal('fail');
    expect(new Set(ids(result))).to.deep.equal(new Set(['ima.validation.ima-ng.not_in_allowlist']));
    expect(result.failures.map((failure) => failure.context['path'])).to.include('/tmp/unsigned');
  });

  it('with IMA signature keys, PCR 10 is required (no runtime policy, or Keylime\'s empty one): a node cannot leave its list unchecked', () => {
    const keyring = new ImaKeyring();
    keyring.add(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const empty = compileRuntimePolicy(parseRuntimePolicy(JSON.stringify(emptyRuntimePolicy())));
    agent.measure('/tmp/unsigned', 'tampered');
    for (const runtimePolicy of [null, empty]) {
      const keys = { ...policies, runtimePolicy, imaKeyring: keyring };
      const noPcr10 = evaluateQuote({ state: polled, policies: keys, reply: agent.reply({ nonce: NONCE, mask: 0 }), nonce: NONCE, now: NOW });
      expect(noPcr10.verdict).to.equal('fail');
      expect(ids(noPcr10)).to.deep.equal(['pcr_validation.missing_pcrs']);
      expect(noPcr10.failures[0]?.context).to.deep.equal({ context: 'PCRs are missing in quote', data: [10] });
    }
    // Without keys, Keylime's empty policy still leaves PCR 10 optional.
    const emptyOnly = { ...policies, runtimePolicy: empty };
    expect(evaluateQuote({ state: polled, policies: emptyOnly, reply: agent.reply({ nonce: NONCE, mask: 0 }), nonce: NONCE, now: NOW }).verdict).to.equal('pass');
  });

  it('applies severity_policy: a recoverable low-severity failure keeps polling and only a more severe one is recorded', async () => {
    const { compileSeverityPolicy } = await import('../../lib/attestation/severity.js');
    const severityPolicy = compileSeverityPolicy({
      policy: [
        { event_id: 'ima\\.validation\\..*', severity_label: 'warning' },
        { event_id: 'pcr_validation\\..*', severity_label: 'error' },
        { event_id: '.*', severity_label: 'emergency' },
      ],
    });
    const first = round(agent, polled, policies).result.nextState;
    agent.measure('/tmp/unknown', 'x');
    const reply = agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 3, partial: true });
    const warn = evaluateQuote({ state: first, policies, reply, nonce: NONCE, now: NOW, options: { severityPolicy } });
    expect(warn.failures[0]).to.include({ eventId: 'ima.validation.ima-ng.not_in_allowlist', severityLabel: 'warning', severityLevel: 2 });
    expect(warn.stopPolling).to.equal(false);
    expect(warn.nextState).to.include({ severityLevel: 2, lastEventId: 'ima.validation.ima-ng.not_in_allowlist' });
    // polling went on; the next (full, from entry 0) round is an error-level PCR failure: recorded
    const strict = { ...policies, tpmPolicy: { 0: ['00'.repeat(31) + '01'], mask: '0x401' } };
    const error = evaluateQuote({
      state: warn.nextState,
      policies: { ...strict, runtimePolicy: runtimePolicyFor(agent.imaLines) },
      reply: agent.reply({ nonce: NONCE, mask: maskOf([0]), imaEntry: 0, partial: true }),
      nonce: NONCE,
      now: NOW,
      options: { severityPolicy },
    });
    expect(ids(error)).to.deep.equal(['pcr_validation.invalid_pcr_0']);
    expect(error.nextState).to.include({ severityLevel: 3, lastEventId: 'pcr_validation.invalid_pcr_0' });
    expect(error.stopPolling).to.equal(false);
    // a later, less severe failure leaves the record alone
    const again = evaluateQuote({ state: error.nextState, policies, reply: agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 0, partial: true }), nonce: NONCE, now: NOW, options: { severityPolicy } });
    expect(ids(again)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
    expect(again.nextState).to.include({ severityLevel: 3, lastEventId: 'pcr_validation.invalid_pcr_0' });
    // an irrecoverable event stops polling whatever its label
    const stale = evaluateQuote({ state: again.nextState, policies, reply: agent.reply({ nonce: 'x', mask: maskOf([]), partial: true }), nonce: NONCE, now: NOW, options: { severityPolicy } });
    expect(stale.stopPolling).to.equal(true);
    expect(stale.nextState).to.include({ severityLevel: 6, lastEventId: 'qoute_validation.quote_validation' });
  });

  it('takes the quote parts the pre-check decoded (verifyQuoteSignatureAhead) for that very quote text, and decodes any other text itself', async () => {
    const ecc = new FakeAgent({ akType: 'ecc' });
    const akTpm = akPublicKey(ecc.akTpm);
    const eccPolicies = { ...policiesFor(ecc, { acceptTpmSigningAlgs: ['ecdsa'] }), akTpm };
    const reply = ecc.reply({ nonce: NONCE, mask: maskOf([]) });
    const judge = (signatureVerdict: SignatureVerdict): EvaluateQuoteResult => evaluateQuote({ state: polled, policies: eccPolicies, reply, nonce: NONCE, now: NOW, signatureVerdict });
    const ahead = (verifyQuoteSignatureAhead(akTpm, reply.quote)) as SignatureVerdict;
    expect(ahead.quote?.text).to.equal(reply.quote);
    expect(ids(judge(ahead))).to.deep.equal([]);
    const other = (verifyQuoteSignatureAhead(akTpm, ecc.reply({ nonce: 'AnotherNonce12345678', mask: maskOf([]) }).quote)) as SignatureVerdict;
    expect(ids(judge(other)), 'a verdict about another quote: this one is decoded and verified afresh').to.deep.equal([]);
    // Handed for this text, the other quote's parts are what the engine checks: its nonce is not this round's.
    const handed = judge({ ...other, quote: { text: reply.quote, parts: other.quote?.parts as NonNullable<SignatureVerdict['quote']>['parts'] } });
    expect(handed.failures[0]?.context).to.include({ check: 'nonce' });
  });

  it('verifies quotes from an ECC (P-256, ECDSA) AK', () => {
    const ecc = new FakeAgent({ akType: 'ecc' });
    const result = evaluateQuote({
      state: polled,
      policies: policiesFor(ecc, { acceptTpmSigningAlgs: ['ecdsa'] }),
      reply: ecc.reply({ nonce: NONCE, mask: maskOf([]) }),
      nonce: NONCE,
      now: NOW,
    });
    expect(ids(result)).to.deep.equal([]);
  });
});
