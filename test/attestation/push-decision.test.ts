import { expect } from 'chai';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { checkPushEvidence, choosePushEvidence, countLines, requiredPcrs, type PushCapabilities, type PushChoice } from '../../lib/attestation/push-decision.js';
import { decidePushMissingLog, decidePushSilence, verifierSilence } from '../../lib/attestation/push-failure-decision.js';
import { marshalPcrBlob } from '../../lib/tpm/pcr-blob.js';
import { policiesFor } from './engine-fixtures.js';
import { ImaKeyring } from '../../lib/ima/ima-keyring.js';
import { generateKeyPairSync } from 'node:crypto';
import { FakeAgent } from './fake-agent.js';

function offered(overrides: Partial<PushCapabilities['quote']> = {}, rest: Partial<PushCapabilities> = {}): PushCapabilities {
  return {
    bootTime: 1_700_000_000,
    quote: {
      componentVersion: '2.0',
      signatureSchemes: ['rsassa'],
      hashAlgorithms: ['sha256', 'sha1'],
      availableSubjects: { sha256: Array.from({ length: 24 }, (_, i) => i), sha1: [0, 1, 10] },
      certificationKeys: [{ keyAlgorithm: 'rsa', serverIdentifier: 'ak', public: undefined, allowableSignatureSchemes: undefined, allowableHashAlgorithms: undefined, raw: { server_identifier: 'ak' } }],
      ...overrides,
    },
    uefiLog: undefined,
    imaLog: { entryCount: 5 },
    received: {},
    ...rest,
  };
}

describe('push decisions (keylime-protocol §10.3–§10.5)', function () {
  const agent = new FakeAgent();
  const policies = policiesFor(agent, { tpmPolicy: { '15': ['00'], mask: '0x8400' } });

  it('requires the tpm_policy PCRs and its mask, the measured-boot PCRs with a refstate, PCR 10 with a runtime policy — never PCR 16', function () {
    expect(requiredPcrs(policies)).to.deep.equal([10, 15]);
    expect(requiredPcrs({ ...policies, runtimePolicy: null, tpmPolicy: { mask: '0x10000' } })).to.deep.equal([0]);
  });

  it('requires PCR 10 for an agent with IMA signature keys, even with no runtime policy and a mask without it', function () {
    const keyring = new ImaKeyring();
    keyring.add(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    expect(requiredPcrs({ ...policies, runtimePolicy: null, imaKeyring: keyring, tpmPolicy: { mask: '0x0' } })).to.deep.equal([10]);
  });

  it('chooses the first accepted hash and scheme the agent offers, the selected subjects per bank, and IMA from 0 on a first attestation', function () {
    const chosen = choosePushEvidence(initialAgentState(OperationalState.GET_QUOTE), policies, agent.akTpm, offered());
    expect(chosen.ok).to.equal(true);
    const choice = (chosen as { choice: PushChoice }).choice;
    expect(choice).to.include({ hashAlg: 'sha256', signatureScheme: 'rsassa', imaStartingOffset: 0, imaEntryCount: 5, imaMode: 'reset', uefiLog: false });
    expect(choice.selectedSubjects).to.deep.equal({ sha256: [10, 15], sha1: null });
  });

  it('chooses the certification key as Keylime does: among the keys whose allowable lists fit, the enrolled AK (TPM2B or TPMT form), else one named "ak", else the first', function () {
    const state = initialAgentState(OperationalState.GET_QUOTE);
    const key = (id: string, rest: Partial<PushCapabilities['quote']['certificationKeys'][number]> = {}) => ({
      keyAlgorithm: 'rsa',
      serverIdentifier: id,
      public: undefined,
      allowableSignatureSchemes: undefined,
      allowableHashAlgorithms: undefined,
      raw: { server_identifier: id },
      ...rest,
    });
    const chosenKey = (keys: ReturnType<typeof key>[]) => {
      const chosen = choosePushEvidence(state, policies, agent.akTpm, offered({ certificationKeys: keys }));
      return chosen.ok ? chosen.choice.certificationKey['server_identifier'] : chosen.detail;
    };
    const sha1Only = key('ak', { allowableHashAlgorithms: ['sha1'] });
    const tpmt = Buffer.from(agent.akTpm, 'base64').subarray(2).toString('base64');
    expect(chosenKey([sha1Only, key('named-ak'), key('tpmt', { public: tpmt })])).to.equal('tpmt');
    expect(chosenKey([key('tpm2b', { public: agent.akTpm }), key('ak')])).to.equal('tpm2b');
    expect(chosenKey([key('first'), key('ak')])).to.equal('ak');
    // No key names the AK: the first that fits (a sha1-only key does not: sha1 is not accepted here).
    expect(chosenKey([sha1Only, key('idevid', { allowableSignatureSchemes: ['rsapss'] }), key('first-fit'), key('second-fit')])).to.equal('first-fit');
    expect(chosenKey([sha1Only])).to.contain('no certification key offered');
    // The capabilities kept to be repeated in the 202 carry the chosen key only, the rest as received.
    const received = { tpm_quote: { component_version: '2.0', certification_keys: [{ server_identifier: 'first' }, { server_identifier: 'ak' }] }, ima_log: { entry_count: 5 } };
    const chosen = choosePushEvidence(state, policies, agent.akTpm, offered({ certificationKeys: [key('first'), key('ak')] }, { received }));
    expect(chosen.ok && chosen.choice.capabilities).to.deep.equal({ tpm_quote: { component_version: '2.0', certification_keys: [{ server_identifier: 'ak' }] }, ima_log: { entry_count: 5 } });
  });

  it('continues IMA from the stored entry when the boot time is unchanged, restarts after a reboot, refuses a boot time that went back', function () {
    const state = { ...initialAgentState(OperationalState.GET_QUOTE), boottime: 1_700_000_000, ima: { ...initialAgentState().ima, nextEntry: 7 } };
    const same = choosePushEvidence(state, policies, agent.akTpm, offered());
    expect((same as { choice: PushChoice }).choice).to.include({ imaStartingOffset: 7, imaMode: 'continue' });
    const rebooted = choosePushEvidence(state, policies, agent.akTpm, offered({}, { bootTime: 1_700_000_500 }));
    expect((rebooted as { choice: PushChoice }).choice).to.include({ imaStartingOffset: 0, imaMode: 'reset' });
    expect(choosePushEvidence(state, policies, agent.akTpm, offered({}, { bootTime: 1_600_000_000 })).ok).to.equal(false);
    expect(choosePushEvidence(state, policies, agent.akTpm, offered({}, { bootTime: null })).ok).to.equal(false);
  });

  it('refuses a component version other than 2.0, banks outside hash_algorithms, no usable key, algorithms not accepted, missing PCRs or logs', function () {
    const state = initialAgentState(OperationalState.GET_QUOTE);
    for (const bad of [
      offered({ componentVersion: '1.2' }),
      offered({ availableSubjects: { sha384: [10, 15] } }),
      offered({ certificationKeys: [] }),
      offered({ hashAlgorithms: ['sha1'], availableSubjects: { sha1: [10, 15] } }),
      offered({ signatureSchemes: ['ecdsa'] }),
      offered({ availableSubjects: { sha256: [10] } }),
      offered({}, { imaLog: undefined }),
    ]) {
      expect(choosePushEvidence(state, policies, agent.akTpm, bad).ok, JSON.stringify(bad.quote)).to.equal(false);
    }
    expect(choosePushEvidence(state, { ...policies, mbRefstate: {} as never }, agent.akTpm, offered()).ok).to.equal(false);
  });

  it('checks evidence covers the requested PCRs and the announced IMA lines before judging it', function () {
    const choice = (choosePushEvidence(initialAgentState(OperationalState.GET_QUOTE), policies, agent.akTpm, offered()) as { choice: PushChoice }).choice;
    const blob = (pcrs: number[]) => marshalPcrBlob('sha256', new Map(pcrs.map((p) => [p, new Uint8Array(32)])));
    const evidence = { message: new Uint8Array(), signature: new Uint8Array(), uefiLog: undefined, imaEntries: 'a\nb\nc\nd\ne\n' };
    expect(checkPushEvidence(choice, { ...evidence, subjectData: blob([10, 15]) })).to.equal(undefined);
    expect(checkPushEvidence(choice, { ...evidence, subjectData: blob([10]) })?.detail).to.contain('PCR 15');
    expect(checkPushEvidence(choice, { ...evidence, subjectData: new Uint8Array([1, 2, 3]) })?.detail).to.contain('not a PCR blob');
    expect(checkPushEvidence(choice, { ...evidence, subjectData: blob([10, 15]), imaEntries: 'a\n' })?.detail).to.contain('fewer');
    // A log asked for and not sent is judged (it fails as a pull quote without its log), not refused.
    expect(checkPushEvidence(choice, { ...evidence, subjectData: blob([10, 15]), imaEntries: undefined })).to.equal(undefined);
  });

  it('fails a silent agent (not pending) once the timeout has passed since its last attestation, or since its enrolment plus the first-attestation grace', function () {
    const severity = compileSeverityPolicy();
    const timing = { timeoutSeconds: 5, firstAttestationGraceSeconds: 3 };
    const state = { ...initialAgentState(OperationalState.GET_QUOTE), lastReceivedQuote: 1000 };
    expect(decidePushSilence(state, 900, 1004, timing, severity)).to.equal(undefined);
    const silent = decidePushSilence(state, 900, 1005, timing, severity);
    expect(silent?.state.operationalState).to.equal(OperationalState.FAILED);
    expect(silent?.history.failures[0]?.event_id).to.equal('internal.verifier.not_reachable');
    const neverAttested = initialAgentState(OperationalState.GET_QUOTE);
    expect(decidePushSilence(neverAttested, 900, 907, timing, severity), 'within timeout + grace of the enrolment').to.equal(undefined);
    expect(decidePushSilence(neverAttested, 900, 908, timing, severity)?.state.operationalState).to.equal(OperationalState.FAILED);
    expect(decidePushSilence({ ...state, lastReceivedQuote: 800 }, 900, 907, timing, severity), 'a quote from before a re-enrolment does not count').to.equal(undefined);
    expect(decidePushSilence({ ...state, operationalState: OperationalState.FAILED }, 900, 2000, timing, severity)).to.equal(undefined);
  });

  it('fails an agent offering no log its policy needs only once two of its waits (quote intervals, whole seconds, at least 1) and a second have passed since its last evidence or enrolment, and only while it attests', function () {
    const severity = compileSeverityPolicy();
    const state = { ...initialAgentState(OperationalState.GET_QUOTE), lastReceivedQuote: 1000 };
    const at = (now: number, enrolledAt = 900) => ({ enrolledAt, now, quoteInterval: 2 });
    expect(decidePushMissingLog(state, at(1004.9), 'no ima_log', severity), 'a read that may have failed once').to.equal(undefined);
    const failed = decidePushMissingLog(state, at(1005), 'no ima_log', severity);
    expect(failed?.state.operationalState).to.equal(OperationalState.FAILED);
    expect(failed?.history.failures[0]?.event_id).to.equal('internal.verifier.no_quote');
    expect(decidePushMissingLog({ ...state, lastReceivedQuote: 800 }, at(1004, 1000), 'no ima_log', severity), 'counted from a later enrolment').to.equal(undefined);
    expect(decidePushMissingLog({ ...state, operationalState: OperationalState.FAILED }, at(2000), 'no ima_log', severity)).to.equal(undefined);
    // Below a second the agent is told to wait 1 s (whole seconds, at least one): two of those, not 2 × 0.4
    // (a healthy agent whose one log read failed was failed for good at its next attempt).
    const fast = (now: number) => ({ enrolledAt: 900, now, quoteInterval: 0.4 });
    expect(decidePushMissingLog(state, fast(1002.9), 'no ima_log', severity)).to.equal(undefined);
    expect(decidePushMissingLog(state, fast(1003), 'no ima_log', severity)?.state.operationalState).to.equal(OperationalState.FAILED);
  });

  it('does not fail an agent for silence the verifier\'s database outage overlapped before the timeout, plus the agents\' way back, after its end', function () {
    const severity = compileSeverityPolicy();
    const timing = { timeoutSeconds: 5, firstAttestationGraceSeconds: 3 };
    const state = { ...initialAgentState(OperationalState.GET_QUOTE), lastReceivedQuote: 1000 };
    // Down from 1002 to 1010: failed from 1010 + 5 + 3 + 10 (the outage's length: an agent backing off waits about as long, ours up to 25 % longer).
    const outage = { from: 1002, to: 1010, downSeconds: 8 };
    expect(decidePushSilence(state, 900, 1027, timing, severity, outage)).to.equal(undefined);
    expect(decidePushSilence(state, 900, 1028, timing, severity, outage)?.history.failures[0]?.event_id).to.equal('internal.verifier.not_reachable');
    expect(decidePushSilence(state, 900, 1005, timing, severity, { from: 1005, to: 1010, downSeconds: 5 }), 'an agent already late when the outage began').to.not.equal(undefined);
    expect(decidePushSilence({ ...state, lastReceivedQuote: 1011 }, 900, 1017, timing, severity, outage), 'silence after the outage ended').to.not.equal(undefined);
    const long = { from: 1001, to: 1908, downSeconds: 907 };
    expect(decidePushSilence(state, 900, 1908 + 5 + 3 + 374, timing, severity, long)).to.equal(undefined);
    expect(decidePushSilence(state, 900, 1908 + 5 + 3 + 375, timing, severity, long), 'the agents\' backoff counts for at most 300 s, drawn up to 25 % above').to.not.equal(undefined);
  });

  it('lets failures close together, with statements answered between them, excuse a stopped agent only for the time the database was down', function () {
    const severity = compileSeverityPolicy();
    const timing = { timeoutSeconds: 5, firstAttestationGraceSeconds: 3 };
    const state = { ...initialAgentState(OperationalState.GET_QUOTE), lastReceivedQuote: 1000 };
    // One statement failed every few seconds for a day, each answered again at once: 20 s down in all.
    const flapping = { from: 1002, to: 1000 + 86_400, downSeconds: 20 };
    // Failed at 1000 + 2 × 5 + 3 + 375 + 20, not a day later.
    expect(decidePushSilence(state, 900, 1407, timing, severity, flapping)).to.equal(undefined);
    expect(decidePushSilence(state, 900, 1408, timing, severity, flapping)?.history.failures[0]?.event_id).to.equal('internal.verifier.not_reachable');
    const neverAttested = initialAgentState(OperationalState.GET_QUOTE);
    // Never attested, enrolled at 998: 998 + 2 × (5 + 3) + 3 + 375 + 20.
    expect(decidePushSilence(neverAttested, 998, 1411, timing, severity, flapping)).to.equal(undefined);
    expect(decidePushSilence(neverAttested, 998, 1412, timing, severity, flapping)).to.not.equal(undefined);
  });

  it('does not fail a fleet queued for its first sessions\' hashes while the verifier was busy, and still fails a stopped agent within a bound an endless backlog cannot widen', function () {
    const severity = compileSeverityPolicy();
    const timing = { timeoutSeconds: 10, firstAttestationGraceSeconds: 60 };
    const neverAttested = initialAgentState(OperationalState.GET_QUOTE);
    // A thousand agents enrolled at 1000; sessions refused 503 from 1005 until the last hash waiting ran at 1155.
    const storm = verifierSilence(undefined, { from: 1005, to: 1155, downSeconds: 150 }, 10, 150);
    expect(decidePushSilence(neverAttested, 1000, 1100, timing, severity), 'the bare allowance: timeout + grace').to.not.equal(undefined);
    expect(decidePushSilence(neverAttested, 1000, 1100, timing, severity, storm)).to.equal(undefined);
    // The end + timeout + grace + 1.25 × the busy time.
    expect(decidePushSilence(neverAttested, 1000, 1412, timing, severity, storm)).to.equal(undefined);
    expect(decidePushSilence(neverAttested, 1000, 1413, timing, severity, storm)?.history.failures[0]?.event_id).to.equal('internal.verifier.not_reachable');
    // A verifier restarted: attested agents need one slow check of their token each, as many as at enrolment.
    const attested = { ...initialAgentState(OperationalState.GET_QUOTE), lastReceivedQuote: 1000 };
    expect(decidePushSilence(attested, 900, 1100, timing, severity, storm)).to.equal(undefined);
    expect(decidePushSilence(attested, 900, 1100, timing, severity), 'without it').to.not.equal(undefined);
    // Kept busy for a day (sessions opened over and over): counted as down for the cap given (150 s) only.
    const endless = verifierSilence(undefined, { from: 1005, to: 1000 + 86_400, downSeconds: 86_395 }, 10, 150);
    expect(endless?.downSeconds).to.equal(150);
    // Enrolled at 1000: 2 × (10 + 60) + 60 + 375 + 150; attested at 1000: 2 × 10 + 60 + 375 + 150.
    expect(decidePushSilence(neverAttested, 1000, 1724, timing, severity, endless)).to.equal(undefined);
    expect(decidePushSilence(neverAttested, 1000, 1725, timing, severity, endless)).to.not.equal(undefined);
    expect(decidePushSilence(attested, 900, 1604, timing, severity, endless)).to.equal(undefined);
    expect(decidePushSilence(attested, 900, 1605, timing, severity, endless)).to.not.equal(undefined);
  });

  it('joins a database outage and a busy time within the merge window into one, and otherwise keeps the later', function () {
    const database = { from: 1000, to: 1010, downSeconds: 10 };
    expect(verifierSilence(database, undefined, 5, 100)).to.equal(database);
    expect(verifierSilence(undefined, undefined, 5, 100)).to.equal(undefined);
    expect(verifierSilence(database, { from: 1014, to: 1030, downSeconds: 16 }, 5, 100)).to.deep.equal({ from: 1000, to: 1030, downSeconds: 26 });
    expect(verifierSilence(database, { from: 1016, to: 1030, downSeconds: 16 }, 5, 100)).to.deep.equal({ from: 1016, to: 1030, downSeconds: 16 });
    expect(verifierSilence({ from: 1040, to: 1050, downSeconds: 10 }, { from: 1016, to: 1030, downSeconds: 16 }, 5, 100)).to.deep.equal({ from: 1040, to: 1050, downSeconds: 10 });
    expect(verifierSilence(undefined, { from: 1016, to: 1030, downSeconds: 14 }, 5, -1)?.downSeconds, 'a cap below zero counts nothing').to.equal(0);
  });

  it('counts non-empty lines', function () {
    expect(countLines('')).to.equal(0);
    expect(countLines('a\n\n b\nc')).to.equal(3);
  });
});
