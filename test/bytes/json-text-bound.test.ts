import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import {
  jsonTextExcess,
  MIN_POLICY_JSON_VALUES,
  POLICY_CHARACTERS_PER_VALUE,
  policyJsonValueBound,
} from '../../lib/bytes/json-text-bound.js';
import { loadRuntimePolicy } from '../../lib/ima/policy-loader.js';
import { vectorPath } from '../helpers/paths.js';

/** A Keylime runtime policy of `files` entries: `path(i)` → `digestsPerFile` digests of `hexDigits` each. */
function keylimePolicy(files: number, path: (i: number) => string, hexDigits: number, digestsPerFile = 1): string {
  const entries: string[] = [];
  for (let i = 0; i < files; i += 1) {
    const digests = Array.from({ length: digestsPerFile }, (_, d) => `"${(i * digestsPerFile + d).toString(16).padStart(hexDigits, '0')}"`);
    entries.push(`"${path(i)}":[${digests.join(',')}]`);
  }
  return `{"meta":{"version":1,"generator":1},"release":0,"digests":{${entries.join(',')}},"excludes":[],"keyrings":{},"ima":{"ignored_keyrings":[],"log_hash_alg":"sha1","dm_policy":null},"ima-buf":{},"verification-keys":""}`;
}

/** Why the policy parsers refuse `text` before parsing it: `jsonTextExcess` at `policyJsonValueBound` of its length. */
function policyJsonExcess(text: string): string | undefined {
  return jsonTextExcess(text, policyJsonValueBound(text.length));
}

describe('the JSON value bound of a policy text (lib/bytes/json-text-bound.ts)', function () {
  this.timeout(120_000);

  it(`is one value per ${POLICY_CHARACTERS_PER_VALUE} characters, and at least ${MIN_POLICY_JSON_VALUES}`, () => {
    expect(policyJsonValueBound(0)).to.equal(MIN_POLICY_JSON_VALUES);
    expect(policyJsonValueBound(32 * 1024 * 1024)).to.equal((32 * 1024 * 1024) / POLICY_CHARACTERS_PER_VALUE);
  });

  it('admits every runtime policy and refstate of the upstream vectors', () => {
    for (const file of [
      ['keylime', 'ima', 'verification', 'runtime_policy_empty.json'],
      ['keylime', 'ima', 'verification', 'runtime_policy_test.json'],
      ['keylime', 'ima', 'verification', 'runtime_policy_with_verification_keys.json'],
      ['keylime', 'runtime_policy', 'runtime-policy-test.json'],
      ['keylime', 'runtime_policy', 'runtime-policy-test-signed.json'],
      ['keylime', 'runtime_policy', 'create-runtime-policy', 'policy-sha1'],
      ['keylime', 'measured_boot', 'example_reference_state.json'],
    ]) {
      expect(policyJsonExcess(readFileSync(vectorPath(...file), 'utf8')), file.join('/')).to.equal(undefined);
    }
  });

  it('admits the densest real shape: 300,000 files of one-letter-and-number paths with sha1 digests, two digests each', () => {
    const policy = keylimePolicy(300_000, (i) => `/${i.toString(36)}`, 40, 2);
    expect(policyJsonExcess(policy)).to.equal(undefined);
  });

  it('admits a distribution-sized policy (300,000 files, sha256, 31 MiB), and one of 100,000 files loads', () => {
    const distributionPath = (i: number): string => `/usr/lib/x86_64-linux-gnu/package-${i % 997}/lib${i}.so.${i % 7}`;
    const large = keylimePolicy(300_000, distributionPath, 64);
    expect(large.length).to.be.above(30 * 1024 * 1024);
    expect(policyJsonExcess(large)).to.equal(undefined);
    const loaded = loadRuntimePolicy(keylimePolicy(100_000, distributionPath, 64));
    expect(Object.keys(loaded.policy.digests)).to.have.length(100_000);
  });

  it(`refuses {} at 3 characters a value and passes it padded past ${POLICY_CHARACTERS_PER_VALUE}`, () => {
    const dense = `{"x":[${'{},'.repeat(100_000)}{}]}`;
    expect(policyJsonExcess(dense)).to.equal(`holds more than ${policyJsonValueBound(dense.length)} JSON values`);
    const padded = `{"x":[${`{}${' '.repeat(POLICY_CHARACTERS_PER_VALUE - 2)},`.repeat(100_000)}{}]}`;
    expect(policyJsonExcess(padded)).to.equal(undefined);
  });

  it('refuses a text nested deeper than 32 levels', () => {
    expect(jsonTextExcess(`${'['.repeat(33)}${']'.repeat(33)}`, 100)).to.equal('nested deeper than 32 levels');
  });
});
