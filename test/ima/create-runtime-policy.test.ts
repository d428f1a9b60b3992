import { expect } from 'chai';
import { ImaParseError } from '../../lib/bytes/parse-errors.js';
import { createRuntimePolicy } from '../../lib/ima/create-runtime-policy.js';
import { pythonJsonDumps } from '../../lib/ima/python-json.js';
import { RuntimePolicyError } from '../../lib/ima/internal/runtime-policy-error.js';
import { parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { vectorText, verificationVector } from './ima-vectors.js';

/** keylime test/data/create-runtime-policy/<name> (test_create_runtime_policy.py). */
const source = (name: string): string => vectorText('keylime', 'runtime_policy', 'create-runtime-policy', name);
const NOW = new Date(2024, 8, 12, 13, 44, 44, 298);

function expectPolicyError(run: () => unknown, message: RegExp): void {
  expect(run).to.throw(RuntimePolicyError, message);
}

describe('runtime policy creation (keylime-policy create runtime)', () => {
  const perAlgorithm: Array<[string, string, number]> = [
    ['sha1', '009b0d8ee8fb8d890fa70f9c8e02b3f1eded1509', 40],
    ['sha256', '96d7fae8adb7286a419a88f78c13d35fb782d63df654b7db56f154765698b754', 64],
    ['sha384', '20393b3e109c55b3128ba761bab1c555d8f39afe118eb1a29929ba8e017e8b2cdfc805c304e10d280604a829145ba6f0', 96],
    ['sha512', '4fb914b8ed30ff69c65551573ce096aaf0c3507896cce44868d7a7e553891043c68a3889f3fc8056ef8c6bc3a54a9db83cd8112928ad51c5cd9e1a4ef332de53', 128],
    ['sm3_256', '96d7fae8adb7286a419a88f78c13d35fb782d63df654b7db56f154765698b754', 64],
  ];
  for (const [alg, data, hexLength] of perAlgorithm) {
    it(`ima-log-${alg}: detects ${alg} from boot_aggregate and lists boot_aggregate and /data`, () => {
      const { policy, digestAlgorithm } = createRuntimePolicy({ imaListText: source(`ima-log-${alg}`), now: NOW });
      expect(digestAlgorithm).to.equal(alg);
      expect(Object.keys(policy.digests)).to.deep.equal(['boot_aggregate', '/data']);
      expect(policy.digests['/data']).to.deep.equal([data]);
      expect(policy.digests['boot_aggregate']?.[0]).to.have.length(hexLength);
      expect(policy.meta).to.deep.equal({ version: 1, generator: 3, timestamp: '2024-09-12 13:44:44.298000' });
      expect(policy.ima).to.deep.equal({ ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null });
    });
  }

  it('writes the policy as Keylime does (json.dumps), and the text parses back to the same policy', () => {
    const { policy } = createRuntimePolicy({ imaListText: source('ima-log-sha1'), now: NOW });
    const text = pythonJsonDumps(policy);
    expect(text).to.equal(
      '{"meta": {"version": 1, "generator": 3, "timestamp": "2024-09-12 13:44:44.298000"}, "release": 0, ' +
        '"digests": {"boot_aggregate": ["0000000000000000000000000000000000000000"], "/data": ["009b0d8ee8fb8d890fa70f9c8e02b3f1eded1509"]}, ' +
        '"excludes": [], "keyrings": {}, "ima": {"ignored_keyrings": [], "log_hash_alg": "sha1", "dm_policy": null}, ' +
        '"ima-buf": {}, "verification-keys": ""}',
    );
    expect(parseRuntimePolicy(text)).to.deep.equal(policy);
  });

  it('refuses an unknown algorithm (ima-log-unknown, policy-unknown): Keylime returns None', () => {
    expectPolicyError(() => createRuntimePolicy({ imaListText: source('ima-log-unknown') }), /boot_aggregate entry with a known algorithm, got unknown/);
    expectPolicyError(() => createRuntimePolicy({ basePolicyText: source('policy-unknown') }), /base policy: cannot tell the digest algorithm of "0011223344.*" from its length/);
  });

  describe('algorithm agreement between sources (test_mixed_algorithms_sources)', () => {
    it('sha256 from an allowlist is ambiguous and settled by an sm3_256 or sha256 list', () => {
      expect(createRuntimePolicy({ allowlistText: source('allowlist-sha256') }).digestAlgorithm).to.equal('sha256_or_sm3_256');
      expect(createRuntimePolicy({ allowlistText: source('allowlist-sha256'), imaListText: source('ima-log-sm3_256') }).digestAlgorithm).to.equal('sm3_256');
      expect(createRuntimePolicy({ allowlistText: source('allowlist-sm3_256'), imaListText: source('ima-log-sha256') }).digestAlgorithm).to.equal('sha256');
    });

    it('refuses sources that disagree', () => {
      expectPolicyError(
        () => createRuntimePolicy({ allowlistText: source('allowlist-sha1'), imaListText: source('ima-log-sha256') }),
        /IMA measurement list: digests use sha256, but the other sources use sha1/,
      );
      expectPolicyError(
        () => createRuntimePolicy({ basePolicyText: source('policy-sha1'), allowlistText: source('allowlist-sha256') }),
        /allowlist: digests use sha256_or_sm3_256, but the other sources use sha1/,
      );
    });

    it('merges a base policy, an allowlist and a list, sorted and without duplicates', () => {
      const { policy, digestAlgorithm } = createRuntimePolicy({
        basePolicyText: source('policy-sha1'),
        allowlistText: `${source('allowlist-sha1')}009b0d8ee8fb8d890fa70f9c8e02b3f1eded1509  data\n`,
        imaListText: source('ima-log-sha1'),
        excludeListText: '/tmp/.*\n# comment\n/proc/.*\n/tmp/.*\n',
      });
      expect(digestAlgorithm).to.equal('sha1');
      expect(Object.keys(policy.digests).sort()).to.deep.equal(['/base_policy_data', '/data', 'boot_aggregate', 'data']);
      expect(policy.digests['data']).to.deep.equal(['009b0d8ee8fb8d890fa70f9c8e02b3f1eded1509']);
      expect(policy.excludes).to.deep.equal(['/proc/.*', '/tmp/.*']);
    });
  });

  it('adds keyrings from ima-buf key entries with --keyrings, unless the keyring is ignored', () => {
    const list = `${verificationVector('measurements_3_entries.ascii')}${verificationVector('keyrings_ima_buf_1_entry.ascii')}`;
    const withKeys = createRuntimePolicy({ imaListText: list, keyrings: true }).policy;
    expect(withKeys.keyrings).to.deep.equal({ '.ima': ['a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5a'] });
    expect(withKeys.digests['.ima']).to.equal(undefined);
    expect(createRuntimePolicy({ imaListText: list }).policy.keyrings).to.deep.equal({});
    const ignored = createRuntimePolicy({ imaListText: list, keyrings: true, ignoredKeyrings: ['.ima'] }).policy;
    expect(ignored.keyrings).to.deep.equal({});
    expect(ignored.ima.ignored_keyrings).to.deep.equal(['.ima']);
  });

  it('refuses a list whose first line is not boot_aggregate, and a malformed list', () => {
    expectPolicyError(() => createRuntimePolicy({ imaListText: verificationVector('signatures_2_entries.ascii') }), /line 1: must be a boot_aggregate entry/);
    expect(() => createRuntimePolicy({ imaListText: 'not a list\n' })).to.throw(ImaParseError);
  });
});
