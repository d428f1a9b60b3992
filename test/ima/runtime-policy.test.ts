import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { dssePae, loadPolicyVerificationKey, verifyDsseEnvelope, type DsseEnvelope } from '../../lib/ima/dsse-envelope.js';
import { ImaKeyring, MAX_IMA_KEYRING_KEYS } from '../../lib/ima/ima-keyring.js';
import { allowlistToRuntimePolicy, parseFlatAllowlist } from '../../lib/ima/internal/legacy-allowlist.js';
import { loadRuntimePolicy } from '../../lib/ima/policy-loader.js';
import { PolicySignatureError, RuntimePolicyError } from '../../lib/ima/internal/runtime-policy-error.js';
import { emptyRuntimePolicy, parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { vectorText, verificationVector } from './ima-vectors.js';
import { cpuTimed } from '../helpers/cpu-time.js';

const policyVector = (name: string): string => vectorText('keylime', 'runtime_policy', name);
const pubkey = (): ReturnType<typeof loadPolicyVerificationKey> => loadPolicyVerificationKey(policyVector('runtime-policy-pubkey.pub'));

function expectPolicyError(run: () => unknown, field: string, message: RegExp): void {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(RuntimePolicyError);
    expect((error as RuntimePolicyError).code).to.equal('ERR_POLICY_INVALID');
    expect((error as RuntimePolicyError).field).to.equal(field);
    expect((error as Error).message).to.match(message);
    return;
  }
  expect.fail('expected a RuntimePolicyError');
}

describe('runtime policies', () => {
  describe('keylime runtime_policy vectors (test_read_allowlist)', () => {
    it('runtime-policy-test.json: version 1, generator 2, 21 digests, the testload.mod digest and the .ima keyring', () => {
      const policy = parseRuntimePolicy(policyVector('runtime-policy-test.json'));
      expect(policy.meta).to.include({ version: 1, generator: 2 });
      expect(Object.keys(policy.digests)).to.have.length(21);
      expect(policy.digests['/boot/grub2/i386-pc/testload.mod']?.[0]).to.equal('68e1d012e3f193dcde955e6ffbbc80e22b0f8778');
      expect(policy.keyrings['.ima']?.[0]).to.equal('a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5a');
      // quirk digest-algorithm-prefix: "sha256:4309…" accepts 4309…
      expect(policy.digests['boot_aggregate']).to.deep.equal(['4309217e9709def327c3409407f4d52907aeba46ef1b4f46529fd095f2ef9fb2']);
    });

    it('its SHA-256 checksum is the one Keylime accepts', () => {
      const checksum = createHash('sha256').update(policyVector('runtime-policy-test.json')).digest('hex');
      expect(checksum).to.equal('64608ceb82d6d6459e8ac5ffd19865d670d1fe99417e10f20446de5d125bc4ab');
    });

    it('runtime-policy-test-signed.json verifies with runtime-policy-pubkey.pub and holds the same policy', () => {
      const loaded = loadRuntimePolicy(policyVector('runtime-policy-test-signed.json'), { signingKey: pubkey() });
      expect(loaded.format).to.equal('signed-runtime-policy');
      expect(loaded.policy).to.deep.equal(parseRuntimePolicy(policyVector('runtime-policy-test.json')));
    });

    it('runtime-policy-test-signed-bad.json fails DSSE verification (ERR_POLICY_SIGNATURE_INVALID, 401)', () => {
      try {
        loadRuntimePolicy(policyVector('runtime-policy-test-signed-bad.json'), { signingKey: pubkey() });
        expect.fail('expected a PolicySignatureError');
      } catch (error) {
        expect(error).to.be.instanceOf(PolicySignatureError);
        expect((error as PolicySignatureError).code).to.equal('ERR_POLICY_SIGNATURE_INVALID');
        expect((error as PolicySignatureError).httpStatus).to.equal(401);
        expect((error as Error).message).to.match(/Runtime policy failed DSSE signature verification/);
      }
    });

    it('a signed policy without a key, or with another key, is refused', () => {
      expect(() => loadRuntimePolicy(policyVector('runtime-policy-test-signed.json'))).to.throw(PolicySignatureError, /give the key/);
      const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
      expect(() => loadRuntimePolicy(policyVector('runtime-policy-test-signed.json'), { signingKey: other })).to.throw(PolicySignatureError);
    });

    it('a key given with an unsigned policy (plain JSON or a flat allowlist) is refused: the key asks for a signed one', () => {
      // Accepted unverified: a signed policy replaced by a permissive unsigned one was enrolled as if checked.
      for (const unsigned of [policyVector('runtime-policy-test.json'), policyVector('ima-allowlist-short.txt')]) {
        expect(() => loadRuntimePolicy(unsigned, { signingKey: pubkey() })).to.throw(PolicySignatureError, /not a signed DSSE envelope/);
      }
    });

    it('verifies an envelope we sign with a fresh P-256 key (PAE as DSSE v1 defines it)', () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const payload = Buffer.from(JSON.stringify(emptyRuntimePolicy()));
      const type = 'application/vnd.keylime+json';
      expect(dssePae(type, Buffer.from('hi')).toString()).to.equal(`DSSEv1 ${type.length} ${type} 2 hi`);
      const envelope: DsseEnvelope = {
        payload: payload.toString('base64'),
        payloadType: type,
        signatures: [{ keyid: 'x', sig: sign('sha256', dssePae(type, payload), privateKey).toString('base64') }],
      };
      expect(verifyDsseEnvelope(envelope, publicKey).equals(payload)).to.equal(true);
      expect(() => verifyDsseEnvelope({ ...envelope, payloadType: 'text/plain' }, publicKey)).to.throw(RuntimePolicyError, /payloadType/);
    });

    it('verifies with the key of a PEM X.509 certificate (made by openssl)', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'ironlime-dsse-'));
      try {
        const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        writeFileSync(path.join(dir, 'key.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
        execFileSync('openssl', ['req', '-new', '-x509', '-key', 'key.pem', '-subj', '/CN=policy signer', '-days', '1', '-out', 'cert.pem'], { cwd: dir, stdio: 'pipe' });
        const payload = Buffer.from(JSON.stringify(emptyRuntimePolicy()));
        const type = 'application/vnd.keylime+json';
        const envelope = {
          payload: payload.toString('base64'),
          payloadType: type,
          signatures: [{ keyid: '', sig: sign('sha256', dssePae(type, payload), privateKey).toString('base64') }],
        };
        const certificateKey = loadPolicyVerificationKey(readFileSync(path.join(dir, 'cert.pem'), 'utf8'));
        expect(loadRuntimePolicy(JSON.stringify(envelope), { signingKey: certificateKey }).policy.meta.generator).to.equal(1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('refuses a key file that is neither a key nor a certificate', () => {
      expect(() => loadPolicyVerificationKey('not a key')).to.throw(PolicySignatureError, /not a PEM public key or certificate/);
    });

    it('ima-allowlist-short.txt converts to the same digests and keyring as runtime-policy-test.json', () => {
      const converted = loadRuntimePolicy(policyVector('ima-allowlist-short.txt'));
      const reference = parseRuntimePolicy(policyVector('runtime-policy-test.json'));
      expect(converted.format).to.equal('flat-allowlist');
      expect(converted.policy.meta.generator).to.equal(3);
      expect(converted.policy.digests).to.deep.equal(reference.digests);
      expect(converted.policy.keyrings).to.deep.equal(reference.keyrings);
    });
  });

  describe('schema validation', () => {
    const valid = (): Record<string, unknown> => JSON.parse(JSON.stringify(emptyRuntimePolicy())) as Record<string, unknown>;
    const cases: Array<[string, (p: Record<string, unknown>) => unknown, string, RegExp]> = [
      ['not JSON', () => '{', '(document)', /is not valid JSON/],
      ['an array', () => [], '(document)', /must be a JSON object/],
      ['no digests', (p) => ({ ...p, digests: undefined }), 'digests', /is required/],
      ['a legacy JSON allowlist', () => ({ hashes: {} }), 'hashes', /legacy JSON allowlists are not supported/],
      ['meta.version 2', (p) => ({ ...p, meta: { version: 2 } }), 'meta.version', /must be an integer from 0 to 1, got 2/],
      ['meta.generator 4', (p) => ({ ...p, meta: { version: 1, generator: 4 } }), 'meta.generator', /from 0 to 3/],
      ['a negative release', (p) => ({ ...p, release: -1 }), 'release', /must be an integer/],
      ['digests not an object', (p) => ({ ...p, digests: [] }), 'digests', /must be an object/],
      ['an empty digest list', (p) => ({ ...p, digests: { '/a': [] } }), 'digests["/a"]', /at least one digest/],
      ['an uppercase digest', (p) => ({ ...p, digests: { '/a': ['AB'.repeat(20)] } }), 'digests["/a"][0]', /lowercase hex/],
      ['a short digest', (p) => ({ ...p, digests: { '/a': ['ab'.repeat(19)] } }), 'digests["/a"][0]', /40 to 128/],
      ['a number digest', (p) => ({ ...p, keyrings: { '.ima': [7] } }), 'keyrings[".ima"][0]', /must be a string/],
      ['an unknown log_hash_alg', (p) => ({ ...p, ima: { log_hash_alg: 'md5' } }), 'ima.log_hash_alg', /must be one of sha1, sha256/],
      ['a dm_policy', (p) => ({ ...p, ima: { dm_policy: {} } }), 'ima.dm_policy', /not supported/],
      ['excludes not strings', (p) => ({ ...p, excludes: [1] }), 'excludes[0]', /must be a string/],
      ['a bad exclude regex', (p) => ({ ...p, excludes: ['/ok', '(unclosed'] }), 'excludes[1]', /"\(unclosed" is not a valid regular expression: missing \)/],
      ['an empty exclude', (p) => ({ ...p, excludes: [''] }), 'excludes[0]', /would exclude every path/],
      ['verification-keys not a string', (p) => ({ ...p, 'verification-keys': {} }), 'verification-keys', /must be a string/],
      ['verification-keys without keyids', (p) => ({ ...p, 'verification-keys': verificationVector('ima_bad_keyring_string_missing_keyids.json') }), 'verification-keys.keyids', /32-bit key ids/],
      ['verification-keys with a bad key', (p) => ({ ...p, 'verification-keys': '{"pubkeys": ["AAAA"], "keyids": [1]}' }), 'verification-keys.pubkeys[0]', /DER SubjectPublicKeyInfo/],
    ];
    for (const [name, mutate, field, message] of cases) {
      it(`refuses ${name}`, () => expectPolicyError(() => parseRuntimePolicy(mutate(valid())), field, message));
    }

    it('fills what older Keylime policies omit (release, generator) and keeps the rest', () => {
      const policy = parseRuntimePolicy(verificationVector('runtime_policy_test.json'));
      expect(policy.release).to.equal(0);
      expect(policy.meta.generator).to.equal(0);
      expect(policy.ima.log_hash_alg).to.equal('sha1');
      expect(parseRuntimePolicy({ meta: { version: 1 }, digests: {} })).to.deep.equal({
        ...emptyRuntimePolicy(),
        meta: { version: 1, generator: 0 },
      });
    });

    it('never throws anything but RuntimePolicyError on random JSON', () => {
      fc.assert(
        fc.property(fc.oneof(fc.json(), fc.string()), (text) => {
          try {
            parseRuntimePolicy(text);
          } catch (error) {
            expect(error).to.be.instanceOf(RuntimePolicyError);
          }
        }),
        { numRuns: 1000 },
      );
      fc.assert(
        fc.property(fc.record({ digests: fc.dictionary(fc.string(), fc.array(fc.string())), excludes: fc.array(fc.string()) }), (value) => {
          try {
            parseRuntimePolicy({ meta: { version: 1 }, ...value });
          } catch (error) {
            expect(error).to.be.instanceOf(RuntimePolicyError);
          }
        }),
        { numRuns: 1000 },
      );
    });
  });

  describe('verification keys (IMA keyring JSON)', () => {
    it('ima_keyring_string.json loads both keys and round-trips to the identical string', () => {
      const text = verificationVector('ima_keyring_string.json').trim();
      const ring = ImaKeyring.fromJson(text, 'keyring');
      expect(ring.size).to.equal(2);
      expect(ring.get(4081397027)?.asymmetricKeyType).to.equal('rsa');
      expect(ring.get(1394556965)?.asymmetricKeyType).to.equal('ec');
      expect(ring.toString()).to.equal(text);
    });

    it('is compiled into the policy', () => {
      const compiled = compileRuntimePolicy(parseRuntimePolicy(verificationVector('runtime_policy_with_verification_keys.json')));
      expect(compiled.verificationKeys?.size).to.equal(2);
    });

    it(`refuses a policy keyring of more than ${MAX_IMA_KEYRING_KEYS} keys before loading any, and loads one of ${MAX_IMA_KEYRING_KEYS}`, () => {
      const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
      const policy = (keys: number): string =>
        JSON.stringify({ meta: { version: 1 }, digests: {}, 'verification-keys': JSON.stringify({ pubkeys: Array(keys).fill(key), keyids: [] }) });
      expect(() => parseRuntimePolicy(policy(MAX_IMA_KEYRING_KEYS + 1)))
        .to.throw(RuntimePolicyError)
        .with.property('message', `runtime policy: verification-keys.pubkeys: holds ${MAX_IMA_KEYRING_KEYS + 1} keys, more than ${MAX_IMA_KEYRING_KEYS}`);
      expect(compileRuntimePolicy(parseRuntimePolicy(policy(MAX_IMA_KEYRING_KEYS))).verificationKeys?.size).to.equal(1);
    });
  });

  describe('flat allowlists and exclude lists', () => {
    it('parses digests, %keyring: entries, spaces in paths as "_", and skips blank lines', () => {
      const list = parseFlatAllowlist(`${'a'.repeat(40)}  /usr/bin/my file\n\n${'b'.repeat(64)} %keyring:.ima\n${'c'.repeat(40)}\t/x\n`);
      expect(list).to.deep.equal({
        digests: { '/usr/bin/my_file': ['a'.repeat(40)], '/x': ['c'.repeat(40)] },
        keyrings: { '.ima': ['b'.repeat(64)] },
      });
    });

    it('drops repeated lines, and takes 20,000 digests of one path in linear time (a list search took 12 s of CPU)', () => {
      const line = (i: number): string => `${i.toString(16).padStart(40, '0')} /a`;
      expect(parseFlatAllowlist(`${line(1)}\n${line(2)}\n${line(1)}\n`).digests['/a']).to.deep.equal([line(1), line(2)].map((l) => l.slice(0, 40)));
      const lines = Array.from({ length: 20_000 }, (_, i) => line(i)).join('\n');
      // CPU time: a CI host that keeps this process off the CPU for seconds does not count.
      const { value: loaded, ms } = cpuTimed(() => loadRuntimePolicy(lines));
      // 0.3 s here, 12 s of CPU with the list search: a bound far from both, as the machine is shared.
      expect(ms).to.be.below(6_000);
      expect(loaded.policy.digests['/a']).to.have.length(20_000);
    });

    it('refuses a line without a path or with a non-hex digest, naming the line', () => {
      expectPolicyError(() => parseFlatAllowlist(`${'a'.repeat(40)}  /a\nlonely\n`), 'allowlist line 2', /expected "<lowercase hex digest> <path>"/);
      expectPolicyError(() => parseFlatAllowlist(`xyz /a\n`), 'allowlist line 1', /got "xyz \/a"/);
      // A line of a megabyte (or of NULs and escapes) is quoted escaped and cut, not echoed whole.
      expectPolicyError(() => parseFlatAllowlist(`\u001b[2J${'\0'.repeat(1 << 20)}\n`), 'allowlist line 1', /^[^\u0000\u001b]{0,700}$/);
    });

    it('adds a legacy exclude list (comments and blank lines skipped) and refuses a bad rule by line', () => {
      const policy = allowlistToRuntimePolicy(`${'a'.repeat(40)} /a\n`, '# comment\n\n/tmp/.*\n/var/log\n', new Date(2024, 8, 12, 13, 44, 44, 298));
      expect(policy.excludes).to.deep.equal(['/tmp/.*', '/var/log']);
      expect(policy.meta).to.deep.equal({ version: 1, generator: 3, timestamp: '2024-09-12 13:44:44.298000' });
      expectPolicyError(() => allowlistToRuntimePolicy('', '/ok\n[bad\n'), 'exclude list line 2', /unterminated character set/);
    });

    it('excludes match at the start of the path only, as Python re.match does', () => {
      const policy = emptyRuntimePolicy();
      policy.excludes = ['/usr/lib', 'boot_aggregate$', '(?i)/TMP/'];
      const { isExcluded } = compileRuntimePolicy(parseRuntimePolicy(policy));
      expect(isExcluded('/usr/lib64/libc.so')).to.equal(true);
      expect(isExcluded('/opt/usr/lib')).to.equal(false);
      expect(isExcluded('boot_aggregate')).to.equal(true);
      expect(isExcluded('boot_aggregate2')).to.equal(false);
      expect(isExcluded('/tmp/x')).to.equal(true);
      expect(isExcluded('/etc/passwd')).to.equal(false);
    });
  });
});
