import { createPrivateKey, createPublicKey } from 'node:crypto';
import { expect } from 'chai';
import { compileRuntimePolicy, type CompiledRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { IMA_EVENTS } from '../../lib/ima/ima-failure.js';
import { ImaKeyring } from '../../lib/ima/ima-keyring.js';
import { parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { verifyImaList, type VerifyImaListInput } from '../../lib/ima/verify-ima-list.js';
import { vectorBytes, verificationVector } from './ima-vectors.js';

/**
 * Keylime's pass/FAIL matrix (keylime/EXPECTED.json "ima/verification", test/test_ima_verification.py):
 * the same lists, policies and keys, the same verdicts.
 */
function policy(name: string): CompiledRuntimePolicy {
  return compileRuntimePolicy(parseRuntimePolicy(verificationVector(`${name}.json`)));
}

function keyring(...names: Array<'rsa' | 'ec'>): ImaKeyring {
  const ring = new ImaKeyring();
  for (const name of names) {
    const pem = vectorBytes('keylime', 'ima', 'verification', 'ima_keys', name === 'rsa' ? 'rsa2048pub.pem' : 'secp256k1.pem');
    ring.add(name === 'rsa' ? createPublicKey(pem) : createPublicKey(createPrivateKey(pem)));
  }
  return ring;
}

const measurements = verificationVector('measurements_3_entries.ascii');
const signatures = verificationVector('signatures_2_entries.ascii');
const badSignature = verificationVector('bad_signature_1_entry.ascii');
const combined = measurements + signatures;

function run(input: Omit<VerifyImaListInput, 'startEntry'>): ReturnType<typeof verifyImaList> {
  return verifyImaList({ ...input, startEntry: 0 });
}

describe('Keylime IMA verification matrix', () => {
  describe('test_measurment_verification', () => {
    it('measurements_3 without policy or keyring: pass', () => {
      expect(run({ listText: measurements }).valid).to.equal(true);
    });
    it('measurements_3 + runtime_policy_test: pass', () => {
      expect(run({ listText: measurements, policy: policy('runtime_policy_test') }).valid).to.equal(true);
    });
    it('measurements_3 + runtime_policy_empty: FAIL, every entry not in the allowlist', () => {
      const result = run({ listText: measurements, policy: policy('runtime_policy_empty') });
      expect(result.valid).to.equal(false);
      expect(result.failures.map((f) => [f.line, f.eventId])).to.deep.equal([
        [1, IMA_EVENTS.notInAllowlist],
        [2, IMA_EVENTS.notInAllowlist],
        [3, IMA_EVENTS.notInAllowlist],
      ]);
      expect(result.failures[0]?.path).to.equal('boot_aggregate');
      expect(result.failures[0]?.context.message).to.equal('File not found in allowlist: boot_aggregate');
    });
  });

  describe('test_signature_verification', () => {
    it('signatures_2 + empty keyring: FAIL with ima.validator.ima-sig.invalid_signature', () => {
      const result = run({ listText: signatures, keyrings: keyring() });
      expect(result.failures.map((f) => [f.path, f.eventId])).to.deep.equal([
        ['/usr/bin/dd', IMA_EVENTS.invalidSignature],
        ['/usr/bin/zmore', IMA_EVENTS.invalidSignature],
      ]);
    });
    it('entry 1 (/usr/bin/dd, RSA) + keyring{rsa}: pass', () => {
      expect(run({ listText: `${signatures.split('\n')[0]}\n`, keyrings: keyring('rsa') }).valid).to.equal(true);
    });
    it('entry 2 (/usr/bin/zmore, EC) + keyring{rsa}: FAIL', () => {
      const result = run({ listText: `${signatures.split('\n')[1]}\n`, keyrings: keyring('rsa') });
      expect(result.failures.map((f) => f.eventId)).to.deep.equal([IMA_EVENTS.invalidSignature]);
    });
    it('both entries + keyring{rsa, ec}: pass', () => {
      expect(run({ listText: signatures, keyrings: keyring('rsa', 'ec') }).valid).to.equal(true);
    });
  });

  describe('test_mixed_verfication', () => {
    const cases: Array<[string, Omit<VerifyImaListInput, 'startEntry'>, boolean]> = [
      ['combined + runtime_policy_test, no keyring', { listText: combined, policy: policy('runtime_policy_test') }, true],
      ['combined + keyring{rsa,ec}, no policy (unsigned entries)', { listText: combined, keyrings: keyring('rsa', 'ec') }, false],
      ['combined + runtime_policy_test + keyring{rsa,ec}', { listText: combined, policy: policy('runtime_policy_test'), keyrings: keyring('rsa', 'ec') }, true],
      ['signatures_2 + runtime_policy_wrong + keyring (valid signature wins)', { listText: signatures, policy: policy('runtime_policy_wrong'), keyrings: keyring('rsa', 'ec') }, true],
      ['signatures_2 + runtime_policy_empty + keyring', { listText: signatures, policy: policy('runtime_policy_empty'), keyrings: keyring('rsa', 'ec') }, true],
      ['signatures_2 + runtime_policy_test + empty keyring (hash allow-listed)', { listText: signatures, policy: policy('runtime_policy_test'), keyrings: keyring() }, true],
      ['measurements_3 + runtime_policy_test', { listText: measurements, policy: policy('runtime_policy_test') }, true],
      ['measurements_3 + runtime_policy_wrong_with_excludes (all excluded)', { listText: measurements, policy: policy('runtime_policy_wrong_with_excludes') }, true],
      ['signatures_2 + runtime_policy_test_with_excludes + keyring', { listText: signatures, policy: policy('runtime_policy_test_with_excludes'), keyrings: keyring('rsa', 'ec') }, true],
      ['measurements_3 + runtime_policy_wrong_with_excludes + keyring', { listText: measurements, policy: policy('runtime_policy_wrong_with_excludes'), keyrings: keyring('rsa', 'ec') }, true],
      ['bad_signature_1 + runtime_policy_test_with_excludes + empty keyring (fails even if excluded)', { listText: badSignature, policy: policy('runtime_policy_test_with_excludes'), keyrings: keyring() }, false],
      ['bad_signature_1 + runtime_policy_test + empty keyring', { listText: badSignature, policy: policy('runtime_policy_test'), keyrings: keyring() }, false],
    ];
    for (const [name, input, valid] of cases) {
      it(`${name}: ${valid ? 'pass' : 'FAIL'}`, () => {
        expect(run(input).valid).to.equal(valid);
      });
    }

    it('a wrong digest without a valid signature is ima.validation.ima-ng.runtime_policy_hash', () => {
      const result = run({ listText: signatures, policy: policy('runtime_policy_wrong'), keyrings: keyring('rsa') });
      expect(result.failures).to.deep.equal([
        {
          line: 2,
          path: '/usr/bin/zmore',
          eventId: IMA_EVENTS.runtimePolicyHash,
          context: {
            message: 'Hash not found in runtime policy',
            got: 'b8ae0b8dd04a5935cd8165aa2260cd11b658bd71629bdb52256a675a1f73907b',
            expected: ['bad00b8dd04a5935cd8165aa2260cd11b658bd71629bdb52256a675a1f73907b'],
          },
        },
      ]);
    });

    it('the bad signature fails on its template hash (its length field was changed after hashing)', () => {
      const result = run({ listText: badSignature, policy: policy('runtime_policy_test_with_excludes'), keyrings: keyring() });
      expect(result.failures.map((f) => [f.line, f.path, f.eventId])).to.deep.equal([[1, '/usr/bin/zmore', IMA_EVENTS.imaHash]]);
    });
  });

  describe('keys', () => {
    it('runtime_policy_with_verification_keys carries both keys: the signed entries pass with no other keyring', () => {
      const result = run({ listText: signatures, policy: policy('runtime_policy_with_verification_keys') });
      expect(result.valid).to.equal(true);
    });

    it('test_ima_buf_verification: the .ima key entry is accepted by runtime_policy_test and learnt', () => {
      const result = run({ listText: verificationVector('keyrings_ima_buf_1_entry.ascii'), policy: policy('runtime_policy_test') });
      expect(result.valid).to.equal(true);
      expect(result.pcr10.sha1).to.equal('e654f343e8f86bd20bc8a0b4c3df3a86801a35ac');
      expect(Object.keys(result.nextState.learnedKeyrings)).to.deep.equal(['.ima']);
      expect(result.nextState.learnedKeyrings['.ima']?.pubkeys).to.have.length(1);
    });

    it('the .ima key entry fails against a policy without that keyring digest, and nothing is learnt', () => {
      const result = run({ listText: verificationVector('keyrings_ima_buf_1_entry.ascii'), policy: policy('runtime_policy_empty') });
      expect(result.failures.map((f) => [f.path, f.eventId])).to.deep.equal([['.ima', IMA_EVENTS.notInAllowlist]]);
      expect(result.nextState.learnedKeyrings).to.deep.equal({});
    });

    it('an ignored keyring ("*") skips key entries', () => {
      const p = parseRuntimePolicy(verificationVector('runtime_policy_empty.json'));
      p.ima.ignored_keyrings = ['*'];
      const result = run({ listText: verificationVector('keyrings_ima_buf_1_entry.ascii'), policy: compileRuntimePolicy(p) });
      expect(result.valid).to.equal(true);
      expect(result.nextState.learnedKeyrings).to.deep.equal({});
    });
  });
});
