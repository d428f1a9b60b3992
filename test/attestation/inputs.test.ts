import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { IronlimeError } from '../../interfaces/errors.js';
import { isAlgorithmAccepted, normalizeEncAlg } from '../../lib/attestation/algorithms.js';
import { initialAgentState, parseAgentState } from '../../lib/attestation/agent-state.js';
import { checkQuoteReplyShape, isFailureEvent } from '../../lib/attestation/internal/quote-reply.js';
import { expectedDataPcr } from '../../lib/attestation/pcr-checks.js';
import { recordFailures } from '../../lib/attestation/internal/failure-record.js';
import { compileSeverityPolicy, labelFailures } from '../../lib/attestation/severity.js';
import { failureEvent, FailureComponent, internalVerifierFailure } from '../../lib/attestation/internal/failure.js';
import { formatPcrMask, parseTpmPolicy } from '../../lib/attestation/tpm-policy.js';

describe('attestation engine inputs: tpm_policy, algorithms, reply shape, stored state', () => {
  it('parses Keylime tpm_policy JSON, lowercasing values and keeping the mask', () => {
    const policy = parseTpmPolicy('{"0": ["AB12"], "7": "cd34", "mask": "0x408081"}');
    expect([...policy.pcrs]).to.deep.equal([[0, ['ab12']], [7, ['cd34']]]);
    expect(formatPcrMask(policy.mask)).to.equal('0x408081');
    expect(parseTpmPolicy({ 1: ['00'], 15: [] }).mask).to.equal(0x8002);
    expect(parseTpmPolicy('').pcrs.size).to.equal(0);
  });

  it('hands a policy it parsed back unchanged (parsed once per agent), and refuses a look-alike object', () => {
    const policy = parseTpmPolicy('{"0": ["ab"], "mask": "0x1"}');
    expect(parseTpmPolicy(policy)).to.equal(policy);
    expect(Object.isFrozen(policy)).to.equal(true);
    const lookAlike = { pcrs: new Map([[0, ['ab']]]), mask: 1 };
    expect(() => parseTpmPolicy(lookAlike)).to.throw(IronlimeError, /tpm_policy\.pcrs: PCR numbers must be decimal 0-23/);
  });

  it('refuses tpm_policy PCRs 10, 16, out-of-range numbers, non-hex values and bad masks', () => {
    const cases: [string, RegExp][] = [
      ['{"10": ["00"]}', /tpm_policy\.10: PCR 10 is checked by IMA replay/],
      ['{"16": ["00"]}', /tpm_policy\.16: PCR 16 binds the agent key/],
      ['{"24": ["00"]}', /tpm_policy\.24: PCR numbers must be decimal 0-23/],
      ['{"x": ["00"]}', /tpm_policy\.x: PCR numbers must be decimal 0-23/],
      ['{"1": ["zz"]}', /tpm_policy\.1: values must be hex digests/],
      ['{"1": [1]}', /tpm_policy\.1: must be a hex string or a list of hex strings/],
      ['{"mask": "0x1000000"}', /tpm_policy\.mask: must be a hex string/],
      ['[1]', /tpm_policy: must be a JSON object/],
      ['{', /tpm_policy: is not valid JSON/],
    ];
    for (const [text, message] of cases) {
      expect(() => parseTpmPolicy(text), text).to.throw(IronlimeError, message).with.property('code', 'ERR_INVALID_PARAMETER_VALUE');
    }
  });

  it('accepts algorithms like Keylime, with the rsa/ecc aliases', () => {
    expect(normalizeEncAlg('rsa')).to.equal('rsa2048');
    expect(normalizeEncAlg('ecc')).to.equal('ecc256');
    expect(isAlgorithmAccepted('rsa2048', ['ecc', 'rsa'])).to.equal(true);
    expect(isAlgorithmAccepted('ecc256', ['ecc'])).to.equal(true);
    expect(isAlgorithmAccepted('rsa3072', ['rsa'])).to.equal(false);
    expect(isAlgorithmAccepted('sha1', ['sha256'])).to.equal(false);
  });

  it('computes the PCR 16 value the Rust agent produces: H(0^n ‖ H(pubkey PEM))', () => {
    const pem = '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n';
    // sha256(32 zero bytes ‖ sha256(pem)), computed step by step with node:crypto
    const inner = createHash('sha256').update(pem).digest();
    const outer = createHash('sha256').update(Buffer.alloc(32)).update(inner).digest('hex');
    expect(Buffer.from(expectedDataPcr('sha256', pem)).toString('hex')).to.equal(outer);
    expect(expectedDataPcr('sha1', pem)).to.have.length(20);
  });

  it('rejects agent replies of the wrong shape as qoute_validation.invalid_data', () => {
    const cases: [unknown, string][] = [
      [null, 'results is not an object'],
      [{ quote: 'r', hash_alg: 'sha256', enc_alg: 'rsa' }, 'sign_alg must be a string'],
      [{ quote: 'r', hash_alg: 'sha256', enc_alg: 'rsa', sign_alg: 'rsassa', pubkey: 3 }, 'pubkey must be a string'],
      [{ quote: 'r', hash_alg: 'sha256', enc_alg: 'rsa', sign_alg: 'rsassa', ima_measurement_list_entry: -1 }, 'ima_measurement_list_entry must be a non-negative integer'],
      [{ quote: 'r', hash_alg: 'sha256', enc_alg: 'rsa', sign_alg: 'rsassa', boottime: '1' }, 'boottime must be a non-negative integer'],
    ];
    for (const [value, detail] of cases) {
      const checked = checkQuoteReplyShape(value);
      expect(isFailureEvent(checked)).to.equal(true);
      expect(checked).to.deep.equal({
        eventId: 'qoute_validation.invalid_data',
        context: { message: 'parsing agents get quote response failed', data: detail },
        recoverable: false,
      });
    }
    expect(isFailureEvent(checkQuoteReplyShape({ quote: 'r', hash_alg: 'sha256', enc_alg: 'rsa', sign_alg: 'rsassa', pubkey: null }))).to.equal(false);
  });

  it('round-trips the stored agent state through JSON and refuses a corrupted one', () => {
    const state = { ...initialAgentState(), tpmClockInfo: { clock: '18446744073709551615', resetCount: 1, restartCount: 2, safe: true } };
    expect(parseAgentState(JSON.parse(JSON.stringify(state)))).to.deep.equal(state);
    const cases: [unknown, RegExp][] = [
      [{ ...state, operationalState: 11 }, /state\.operationalState: must be a Keylime state code 0-10/],
      [{ ...state, attestationCount: -1 }, /state\.attestationCount: must be a non-negative integer/],
      [{ ...state, tpmClockInfo: { clock: 5, resetCount: 0, restartCount: 0, safe: true } }, /state\.tpmClockInfo: must be/],
      [{ ...state, publicKey: 7 }, /state\.publicKey: must be a string or null/],
      [{ ...state, ima: { nextEntry: 1 } }, /IMA replay state: pcr10/],
      ['x', /state: must be an object/],
    ];
    for (const [value, message] of cases) {
      expect(() => parseAgentState(value)).to.throw(IronlimeError, message).with.property('code', 'ERR_INVALID_PARAMETER_VALUE');
    }
  });

  it('records the polling loop’s own failures like quote failures', () => {
    const policy = compileSeverityPolicy({ policy: [{ event_id: 'pcr_validation\\..*', severity_label: 'notice' }] });
    const unreachable = labelFailures(policy, [internalVerifierFailure('not_reachable', 'agent was not reachable from verifier')]);
    expect(recordFailures({ severityLevel: null, lastEventId: null }, unreachable, policy)).to.deep.equal({
      severityLevel: 6,
      lastEventId: 'internal.verifier.not_reachable',
      stopPolling: true,
    });
    const low = labelFailures(policy, [failureEvent(FailureComponent.PCR_VALIDATION, 'invalid_pcr_3', {}, true)]);
    expect(recordFailures({ severityLevel: 3, lastEventId: 'x' }, low, policy)).to.deep.equal({ severityLevel: 3, lastEventId: 'x', stopPolling: false });
    expect(recordFailures({ severityLevel: null, lastEventId: null }, [], policy)).to.deep.equal({ severityLevel: null, lastEventId: null, stopPolling: false });
  });
});
