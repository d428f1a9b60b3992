import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { runCli, type CliRun } from '../helpers/cli-runner.js';
import { parseImaAsciiList } from '../../lib/ima/ascii-list-parser.js';
import { encodeImaBinaryList } from '../../lib/ima/internal/binary-list-writer.js';
import { parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { vectorPath } from '../helpers/paths.js';
import { RUST_KEYLIME_PCR10_SHA1, rustKeylimeLog } from './ima-vectors.js';

const ironlime = (...args: string[]): Promise<CliRun> => runCli(args);

const verification = (name: string): string => vectorPath('keylime', 'ima', 'verification', name);
const policyVector = (name: string): string => vectorPath('keylime', 'runtime_policy', name);

describe('ironlime ima verify / policy create / policy check', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-ima-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the JSON report and exits 0 for the 826-entry list at its PCR 10', async () => {
    const run = await ironlime('ima', 'verify', '--log', vectorPath('rust-keylime', 'ima', 'ascii_runtime_measurements'), '--pcr10', RUST_KEYLIME_PCR10_SHA1, '--json');
    expect(run.code).to.equal(0);
    const report = JSON.parse(run.stdout) as { valid: boolean; entries: number; pcr10: { sha1?: string; sha256?: string }; failures: unknown[] };
    expect(report).to.deep.include({ valid: true, entries: 826, matched: 826, failures: [] });
    // Only the bank of --pcr10 is replayed; without --pcr10, both.
    expect(report.pcr10).to.deep.equal({ sha1: RUST_KEYLIME_PCR10_SHA1 });
    const unquoted = await ironlime('ima', 'verify', '--log', vectorPath('rust-keylime', 'ima', 'ascii_runtime_measurements'), '--json');
    const both = (JSON.parse(unquoted.stdout) as typeof report).pcr10;
    expect(both.sha1).to.equal(RUST_KEYLIME_PCR10_SHA1);
    expect(both.sha256).to.match(/^[0-9a-f]{64}$/);
  });

  it('reads the binary list too', async () => {
    const file = path.join(dir, 'binary_runtime_measurements');
    writeFileSync(file, encodeImaBinaryList(parseImaAsciiList(rustKeylimeLog())));
    const run = await ironlime('ima', 'verify', '--log', file, '--pcr10', RUST_KEYLIME_PCR10_SHA1);
    expect(run.code).to.equal(0);
    expect(run.stdout).to.match(/^valid: 826 entries; PCR 10 sha1 82231c67/);
  });

  it('exits 1 with the failures when the list breaks the policy or the PCR', async () => {
    const run = await ironlime('ima', 'verify', '--log', verification('measurements_3_entries.ascii'), '--policy', verification('runtime_policy_empty.json'), '--json');
    expect(run.code).to.equal(1);
    const report = JSON.parse(run.stdout) as { valid: boolean; failures: Array<{ line: number; path: string; eventId: string }> };
    expect(report.valid).to.equal(false);
    expect(report.failures.map((f) => [f.line, f.eventId])).to.deep.equal([
      [1, 'ima.validation.ima-ng.not_in_allowlist'],
      [2, 'ima.validation.ima-ng.not_in_allowlist'],
      [3, 'ima.validation.ima-ng.not_in_allowlist'],
    ]);
    const pcr = await ironlime('ima', 'verify', '--log', verification('measurements_3_entries.ascii'), '--pcr10', 'ab'.repeat(32), '--bank', 'sha256');
    expect(pcr.code).to.equal(1);
    expect(pcr.stdout).to.match(/line 0: ima\.pcr_mismatch: IMA measurement list does not match TPM PCR (ab){32}/);
  });

  it('checks signatures with --ima-key and a signed policy with --policy-key, and an exclude list', async () => {
    const signed = await ironlime(
      'ima', 'verify', '--log', verification('signatures_2_entries.ascii'),
      '--ima-key', verification('ima_keys/rsa2048pub.pem'), '--ima-key', verification('ima_keys/secp256k1.pem'),
    );
    expect(signed.code).to.equal(0);
    const excluded = await ironlime(
      'ima', 'verify', '--log', verification('measurements_3_entries.ascii'),
      '--policy', policyVector('runtime-policy-test-signed.json'), '--policy-key', policyVector('runtime-policy-pubkey.pub'),
      '--excludelist', writeFile('excludes.txt', 'boot_aggregate\n/lib/modules/\n'),
    );
    expect(excluded.code).to.equal(0);
  });

  it('with --ima-key and no --policy, judges as the verifier does (Keylime\'s empty policy): an unsigned ima-ng line fails', async () => {
    const signedThenUnsigned = `${readFileSync(verification('signatures_2_entries.ascii'), 'utf8')}${rustKeylimeLog().split('\n').slice(1, 3).join('\n')}\n`;
    const run = await ironlime(
      'ima', 'verify', '--log', writeFile('mixed.ascii', signedThenUnsigned),
      '--ima-key', verification('ima_keys/rsa2048pub.pem'), '--ima-key', verification('ima_keys/secp256k1.pem'),
    );
    expect(run.code).to.equal(1);
    expect(run.stdout).to.match(/line 3: ima\.validation\.ima-ng\.not_in_allowlist \/init/);
    expect(run.stdout).to.match(/line 4: ima\.validation\.ima-ng\.not_in_allowlist \/bin\/sh/);
  });

  it('exits 2 for malformed input: unparsable or empty list, bad policy, bad signature, missing file, bad --pcr10', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['ima', 'verify', '--log', vectorPath('rust-keylime', 'invalid_ima_log.txt')], /line 1: expected/],
      [['ima', 'verify', '--log', vectorPath('rust-keylime', 'empty_ima_log.txt')], /the measurement list is empty/],
      [['ima', 'verify', '--log', verification('measurements_3_entries.ascii'), '--policy', writeFile('bad.json', '{"meta": {"version": 1}, "digests": {}, "excludes": ["("]}')], /excludes\[0\]: "\(" is not a valid regular expression/],
      [['ima', 'verify', '--log', verification('measurements_3_entries.ascii'), '--policy', policyVector('runtime-policy-test-signed-bad.json'), '--policy-key', policyVector('runtime-policy-pubkey.pub')], /failed DSSE signature verification/],
      [['ima', 'verify', '--log', verification('measurements_3_entries.ascii'), '--policy', policyVector('runtime-policy-test-signed.json')], /give the key to verify it with/],
      [['ima', 'verify', '--log', path.join(dir, 'missing')], /^ironlime: --log: cannot read .*missing: ENOENT\n$/],
      [['ima', 'verify', '--log', verification('measurements_3_entries.ascii'), '--pcr10', 'xyz'], /--pcr10 must be hex/],
      [['ima', 'verify', '--log', verification('measurements_3_entries.ascii'), '--pcr10', 'abcd'], /quotedPcr10 must be a sha1 digest/],
      [['ima', 'verify', '--log', verification('measurements_3_entries.ascii'), '--bank', 'md5'], /./],
      [['ima', 'verify'], /./],
    ];
    for (const [args, message] of cases) {
      const run = await ironlime(...args);
      expect(run.code, args.join(' ')).to.equal(2);
      expect(run.stderr, args.join(' ')).to.match(message);
    }
  });

  it('policy create writes a Keylime runtime policy from a known-good list that the list then passes', async () => {
    const out = path.join(dir, 'policy.json');
    const log = vectorPath('rust-keylime', 'ima', 'ascii_runtime_measurements');
    const run = await ironlime('policy', 'create', '--ima-log', log, '--excludelist', writeFile('ex.txt', '/tmp/.*\n'), '--out', out);
    expect(run.code).to.equal(0);
    expect(run.stderr).to.match(/wrote .*policy\.json: \d+ path\(s\), sha1 digests/);
    const policy = parseRuntimePolicy(readFileSync(out, 'utf8'));
    expect(policy.meta.generator).to.equal(3);
    expect(policy.excludes).to.deep.equal(['/tmp/.*']);
    const check = await ironlime('ima', 'verify', '--log', log, '--policy', out, '--pcr10', RUST_KEYLIME_PCR10_SHA1);
    expect(check.code).to.equal(0);
  });

  it('policy create prints to standard output and refuses bad input with exit 2', async () => {
    const created = await ironlime('policy', 'create', '--ima-log', policyVector('create-runtime-policy/ima-log-sha256'));
    expect(created.code).to.equal(0);
    expect(JSON.parse(created.stdout).digests['/data']).to.deep.equal(['96d7fae8adb7286a419a88f78c13d35fb782d63df654b7db56f154765698b754']);
    const unknown = await ironlime('policy', 'create', '--ima-log', policyVector('create-runtime-policy/ima-log-unknown'));
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.match(/boot_aggregate entry with a known algorithm/);
    const nothing = await ironlime('policy', 'create');
    expect(nothing.code).to.equal(2);
    expect(nothing.stderr).to.match(/give at least one of --ima-log, --allowlist, --base-policy/);
  });

  it('policy check loads JSON, signed and flat policies', async () => {
    const signed = await ironlime('policy', 'check', policyVector('runtime-policy-test-signed.json'), '--policy-key', policyVector('runtime-policy-pubkey.pub'));
    expect(signed.code).to.equal(0);
    expect(signed.stdout).to.equal('valid signed-runtime-policy: 21 path(s), 0 exclude(s), 1 keyring(s), log_hash_alg sha1\n');
    const flat = await ironlime('policy', 'check', policyVector('ima-allowlist-short.txt'));
    expect(flat.stdout).to.match(/^valid flat-allowlist: 21 path\(s\)/);
    const bad = await ironlime('policy', 'check', policyVector('runtime-policy-test-signed-bad.json'), '--policy-key', policyVector('runtime-policy-pubkey.pub'));
    expect(bad.code).to.equal(2);
  });

  function writeFile(name: string, content: string): string {
    const file = path.join(dir, name);
    writeFileSync(file, content);
    return file;
  }
});
