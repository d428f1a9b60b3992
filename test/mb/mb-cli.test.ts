import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { vectorPath } from '../helpers/paths.js';
import { runCli, type CliRun } from '../helpers/cli-runner.js';
import { loadLog, replayJson, selfQuote } from './mb-vectors.js';

const run = (...args: string[]): Promise<CliRun> => runCli(args);

const MB_LOG = vectorPath('keylime', 'measured_boot', 'mb_log.b64');
const PLAIN_LOG = vectorPath('keylime', 'measured_boot', 'binary_bios_measurements');

describe('ironlime mb (CLI)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-mb-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('replay --json prints the events, every bank and the Secure Boot state (base64 log)', async () => {
    const { code, stdout } = await run('mb', 'replay', '--log', MB_LOG, '--json');
    expect(code).to.equal(0);
    const printed = JSON.parse(stdout) as { events: number; pcrs: Record<string, Record<string, string>>; secureBoot: boolean | null };
    expect(printed.events).to.equal(102);
    expect(printed.secureBoot).to.equal(true);
    expect(printed.pcrs).to.deep.equal(replayJson(loadLog('keylime', 'measured_boot', 'mb_log.b64')));
  });

  it('replay prints text for a binary SHA1-format log', async () => {
    const { code, stdout } = await run('mb', 'replay', '--log', vectorPath('tpm2-tools', 'event-uefi-sha1-log.bin'));
    expect(code).to.equal(0);
    expect(stdout).to.match(/^sha1 event log, 17 events; Secure Boot /);
    expect(stdout).to.include('sha1 PCR  0: ');
  });

  it('replay reports Secure Boot unknown as null', async () => {
    const { stdout } = await run('mb', 'replay', '--log', vectorPath('go-tpm-tools', 'eventlogs', 'arch-linux-workstation.bin'), '--json');
    expect((JSON.parse(stdout) as { secureBoot: unknown }).secureBoot).to.equal(null);
  });

  it('refstate: refused (exit 1) for Secure Boot off without -i; written with --without-secureboot --out', async () => {
    const refused = await run('mb', 'refstate', '--log', PLAIN_LOG);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.include('the log has Secure Boot disabled');
    const out = path.join(dir, 'plain.json');
    const made = await run('mb', 'refstate', '--log', PLAIN_LOG, '--without-secureboot', '--out', out);
    expect(made.code).to.equal(0);
    expect(made.stderr).to.equal(`wrote ${out}: Secure Boot off, 1 kernel(s)\n`);
    expect((JSON.parse(readFileSync(out, 'utf8')) as { has_secureboot: boolean }).has_secureboot).to.equal(false);
  });

  it('verify: the log passes its own refstate (exit 0) and fails another (exit 1) naming the components', async () => {
    const secure = path.join(dir, 'secure.json');
    expect((await run('mb', 'refstate', '--log', MB_LOG, '--out', secure)).code).to.equal(0);
    const pass = await run('mb', 'verify', '--log', MB_LOG, '--refstate', secure);
    expect(pass.code).to.equal(0);
    expect(pass.stdout).to.match(/^PASS\nreplay: no --pcrs given/);
    const plain = path.join(dir, 'plain-for-verify.json');
    await run('mb', 'refstate', '--log', PLAIN_LOG, '-i', '--out', plain);
    const fail = await run('mb', 'verify', '--log', MB_LOG, '--refstate', plain, '--json');
    expect(fail.code).to.equal(1);
    const result = JSON.parse(fail.stdout) as { passed: boolean; failures: { eventId: string; context: { component: string } }[] };
    expect(result.passed).to.equal(false);
    expect(result.failures.map((f) => f.context.component)).to.include.members(['secure_boot', 'kernels[0].shim_authcode_sha256']);
    expect(new Set(result.failures.map((f) => f.eventId))).to.deep.equal(new Set(['measured_boot.policy_example']));
  });

  it('verify --pcrs checks the replay first: a wrong quoted PCR fails with measured_boot.invalid_pcr_<n>', async () => {
    const refstate = path.join(dir, 'secure-pcrs.json');
    await run('mb', 'refstate', '--log', MB_LOG, '--out', refstate);
    const quote = selfQuote(loadLog('keylime', 'measured_boot', 'mb_log.b64'));
    const good = path.join(dir, 'good-pcrs.json');
    writeFileSync(good, JSON.stringify(quote));
    const pass = await run('mb', 'verify', '--log', MB_LOG, '--refstate', refstate, '--pcrs', good, '--json');
    expect(pass.code).to.equal(0);
    expect((JSON.parse(pass.stdout) as { replay: { matched: number } }).replay.matched).to.equal(15);
    const bad = path.join(dir, 'bad-pcrs.json');
    writeFileSync(bad, JSON.stringify({ sha256: { ...quote.sha256, '7': '00'.repeat(32) } }));
    const fail = await run('mb', 'verify', '--log', MB_LOG, '--refstate', refstate, '--pcrs', bad);
    expect(fail.code).to.equal(1);
    expect(fail.stdout).to.include('measured_boot.invalid_pcr_7: SHA256 PCR 7 replayed from the boot event log does not match the quote');
  });

  it('exit 2 for malformed input or usage', async () => {
    const badJson = path.join(dir, 'bad.json');
    writeFileSync(badJson, '{"kernels": [');
    const cases: [string[], string][] = [
      [['mb', 'replay', '--log', vectorPath('keylime', 'measured_boot', 'binary_bios_measurements-bogus')], 'PCR index'],
      [['mb', 'replay', '--log', vectorPath('keylime', 'measured_boot', 'binary_bios_measurements-empty')], 'the event log is empty'],
      [['mb', 'replay', '--log', path.join(dir, 'missing.bin')], `--log: cannot read ${path.join(dir, 'missing.bin')}: ENOENT`],
      [['mb', 'verify', '--log', MB_LOG, '--refstate', badJson], 'measured-boot refstate: not valid JSON'],
      [['mb', 'verify', '--log', MB_LOG, '--refstate', vectorPath('keylime', 'measured_boot', 'example_reference_state.json'), '--pcrs', badJson], '--pcrs: not valid JSON'],
      [['mb', 'replay'], ''],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await run(...args);
      expect(code, args.join(' ')).to.equal(2);
      expect(stderr, args.join(' ')).to.include(message);
    }
  });
});
