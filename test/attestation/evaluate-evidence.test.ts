import { expect } from 'chai';
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { IronlimeError } from '../../interfaces/errors.js';
import { akPublicKey, type AgentPolicies } from '../../lib/attestation/agent-policies.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { evaluateEvidence } from '../../lib/attestation/evaluate-evidence.js';
import { evaluateQuote } from '../../lib/attestation/internal/evaluate-quote.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { AgentQuoteReply } from '../../lib/attestation/internal/quote-reply.js';
import { verifyIdentityQuote } from '../../lib/attestation/verify-identity-quote.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { vectorPath } from '../helpers/paths.js';
import { maskOf, policiesFor } from './engine-fixtures.js';
import { FakeAgent } from './fake-agent.js';

const NONCE = 'evidenceNonce0123456';
const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const BOOT_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];

/** Event ids from the pull path (first round) and the one-shot path for the same evidence. */
function bothPaths(reply: AgentQuoteReply, policies: AgentPolicies, nonce = NONCE): { pull: string[]; evidence: string[]; valid: boolean } {
  const pull = evaluateQuote({
    state: { ...initialAgentState(), operationalState: OperationalState.GET_QUOTE },
    policies,
    reply,
    nonce,
    now: 1,
  });
  const evidence = evaluateEvidence({
    quote: reply.quote,
    nonce,
    hashAlg: reply.hash_alg,
    akTpm: policies.akTpm,
    tpmPolicy: policies.tpmPolicy,
    runtimePolicy: policies.runtimePolicy,
    mbRefstate: policies.mbRefstate,
    imaMeasurementList: reply.ima_measurement_list ?? null,
    mbLog: reply.mb_measurement_list ?? null,
  });
  expect(evidence.failures.map((f) => f.type)).to.deep.equal(evidence.details.map((d) => d.eventId));
  return { pull: pull.failures.map((f) => f.eventId), evidence: evidence.failures.map((f) => f.type), valid: evidence.valid };
}

describe('evaluateEvidence (POST /verify/evidence) and verifyIdentityQuote (GET /verify/identity)', () => {
  let agent: FakeAgent;
  let policies: AgentPolicies;

  beforeEach(() => {
    agent = new FakeAgent({ bootLog: BOOT_LOG });
    agent.measure('/usr/bin/bash', 'bash');
    policies = policiesFor(agent, {
      mbRefstate: createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true }),
      tpmPolicy: { mask: `0x${maskOf(BOOT_PCRS).toString(16)}` },
    });
  });

  const reply = (nonce = NONCE): AgentQuoteReply => agent.reply({ nonce, mask: maskOf(BOOT_PCRS) });

  it('gives the same verdict as a first pull round on the same evidence', () => {
    const good = bothPaths(reply(), policies);
    expect(good).to.deep.equal({ pull: [], evidence: [], valid: true });

    agent.measure('/tmp/evil', 'x');
    const ima = bothPaths(reply(), policies);
    expect(ima.evidence).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
    expect(ima.pull).to.deep.equal(ima.evidence);

    const pcr = bothPaths(reply(), { ...policies, tpmPolicy: { 7: ['00'.repeat(32)], mask: '0x4487ff' } });
    expect(pcr.evidence).to.include('pcr_validation.invalid_pcr_7');
    expect(pcr.pull).to.deep.equal(pcr.evidence);

    const stale = bothPaths(reply('SomeOtherNonce000000'), policies);
    expect(stale).to.deep.equal({
      pull: ['qoute_validation.quote_validation'],
      evidence: ['qoute_validation.quote_validation'],
      valid: false,
    });

    agent.extend(4, new Uint8Array(32));
    const boot = bothPaths(reply(), policies);
    // Keylime's order: IMA before the boot PCRs (the /tmp/evil entry is still in the log)
    expect(boot.evidence).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist', 'measured_boot.invalid_pcr_4']);
    expect(boot.pull).to.deep.equal(boot.evidence);
  });

  it('skips the PCR 16 key binding the pull path enforces', () => {
    const other = new FakeAgent({ identity: 1 });
    const paths = bothPaths({ ...reply(), pubkey: other.nkPem }, policies);
    expect(paths.pull).to.deep.equal(['pcr_validation.invalid_pcr_16']);
    expect(paths.evidence).to.deep.equal([]);
  });

  it('answers in Keylime reply shape with claims, and refuses input errors with HTTP 400 codes', () => {
    const r = reply();
    const result = evaluateEvidence({
      quote: r.quote,
      nonce: NONCE,
      hashAlg: 'sha256',
      akTpm: akPublicKey(agent.akTpm),
      imaMeasurementList: r.ima_measurement_list ?? null,
    });
    expect(result).to.include({ valid: true });
    expect(result.failures).to.deep.equal([]);
    expect(result.claims.quote?.pcrs['0']).to.equal(Buffer.from(agent.pcrs.get(0) as Uint8Array).toString('hex'));
    expect(result.claims.ima).to.deep.equal({ firstEntry: 0, entriesChecked: 2, entriesVerified: 2, nextEntry: 2 });
    const noList = evaluateEvidence({ quote: r.quote, nonce: NONCE, hashAlg: 'sha256', akTpm: agent.akTpm });
    expect(noList.failures).to.deep.equal([
      { type: 'pcr_validation.unused_pcr_10', context: { message: 'IMA PCR 10 in policy, but no measurement list provided' } },
    ]);
    const bad = [
      () => evaluateEvidence({ quote: r.quote, nonce: NONCE, hashAlg: 'md5', akTpm: agent.akTpm }),
      () => evaluateEvidence({ quote: r.quote, nonce: NONCE, hashAlg: 'sha256', akTpm: agent.akTpm, tpmPolicy: '{"16": ["00"]}' }),
    ];
    const messages = [/data\.hash_alg: unsupported hash algorithm "md5"/, /data\.tpm_policy\.16: PCR 16 binds the agent key/];
    bad.forEach((attempt, i) => {
      expect(attempt).to.throw(IronlimeError, messages[i] as RegExp).with.property('code', 'ERR_INVALID_PARAMETER_VALUE');
    });
  });

  it('verifies identity quotes: AK signature, nonce and pcrDigest only', () => {
    const identity = agent.reply({ nonce: NONCE, mask: 0 });
    expect(verifyIdentityQuote({ quote: identity.quote, nonce: NONCE, hashAlg: 'sha256', akTpm: agent.akTpm })).to.deep.equal({ valid: 1 });
    const other = new FakeAgent({ identity: 1 });
    const forged = verifyIdentityQuote({ quote: identity.quote, nonce: NONCE, hashAlg: 'sha256', akTpm: other.akTpm });
    expect(forged).to.deep.equal({ valid: 0, reason: 'quote: signature does not verify with the AK' });
    const stale = verifyIdentityQuote({ quote: identity.quote, nonce: 'different', hashAlg: 'sha256', akTpm: agent.akTpm });
    expect(stale).to.deep.equal({ valid: 0, reason: 'quote: extraData does not match the nonce' });
    expect(verifyIdentityQuote({ quote: identity.quote, nonce: NONCE, hashAlg: 'sha1', akTpm: agent.akTpm }).valid).to.equal(0);
    expect(verifyIdentityQuote({ quote: identity.quote, nonce: NONCE, hashAlg: 'md5', akTpm: agent.akTpm })).to.deep.equal({
      valid: 0,
      reason: 'unsupported hash algorithm "md5"',
    });
  });
});

describe('the engine on Keylime’s own checkquote vector (keylime/tpm/tpm_util_test.py::test_checkquote)', () => {
  const dir = (name: string): string => vectorPath('keylime', 'tpm', 'checkquote', name);
  const ak = createPublicKey(readFileSync(dir('aik_pub.pem')));
  const quote = readFileSync(dir('quote_wire_format.txt'), 'utf8').trim();
  const nonce = readFileSync(dir('nonce.txt'), 'utf8').trim();

  it('verifies the identity quote and refuses the altered nonce upstream refuses', () => {
    expect(nonce).to.equal('Ai5M5SjYjnkyv4P7itH1');
    expect(verifyIdentityQuote({ quote, nonce, hashAlg: 'sha256', akTpm: ak })).to.deep.equal({ valid: 1 });
    expect(verifyIdentityQuote({ quote, nonce: 'ai5M5SjYjnkyv4P7itH1', hashAlg: 'sha256', akTpm: ak }).valid).to.equal(0);
    expect(verifyIdentityQuote({ quote, nonce, hashAlg: 'sha1', akTpm: ak }).valid).to.equal(0);
  });

  it('accepts it as one-shot evidence and reports its only PCR, 16', () => {
    const result = evaluateEvidence({ quote, nonce, hashAlg: 'sha256', akTpm: ak });
    expect(result.failures).to.deep.equal([]);
    expect(result.claims.quote?.pcrs).to.deep.equal({ 16: 'd471c0674951f0ef075aecdd42fbefa6eca6019820add0bd222d1c4e6242ce6f' });
    expect(result.claims.quote?.clockInfo).to.deep.equal({ clock: '1284787942', resetCount: 3, restartCount: 0, safe: true });
  });

  it('gives the same PCRs in its claims serialised, spread or read twice (their hex is worked out on first read)', () => {
    const pcrs = { 16: 'd471c0674951f0ef075aecdd42fbefa6eca6019820add0bd222d1c4e6242ce6f' };
    const claims = evaluateEvidence({ quote, nonce, hashAlg: 'sha256', akTpm: ak }).claims;
    expect((JSON.parse(JSON.stringify(claims)) as { quote: { pcrs: unknown } }).quote.pcrs).to.deep.equal(pcrs);
    expect({ ...claims.quote }.pcrs).to.deep.equal(pcrs);
    expect(claims.quote?.pcrs).to.equal(claims.quote?.pcrs);
  });
});
