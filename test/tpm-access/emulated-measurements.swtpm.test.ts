import { expect } from 'chai';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { replayBootLog } from '../../lib/tpm-access/boot-log-replayer.js';
import { ImaEmulator } from '../../lib/tpm-access/ima-emulator.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import { openTpm2ToolsTpm, type Tpm2ToolsTpm } from '../../lib/tpm-access/tpm2-tools/tpm-adapter.js';
import type { Tpm } from '../../lib/tpm-access/tpm-port.js';
import { REPO_ROOT, vectorPath } from '../helpers/paths.js';
import { startTestSwtpm, type SwtpmFixture } from './tpm-test-helpers.js';

const FIXTURE_LOG = path.join(REPO_ROOT, 'fixtures', 'eventlogs', 'ubuntu-2104-no-secure-boot.bin');

/** go-tpm-tools' expected PCRs for this log (server/eventlog_test.go, Ubuntu2104NoSecureBootGCE). */
function upstreamPcrs(): Record<'sha1' | 'sha256', Record<string, string>> {
  const expected = JSON.parse(readFileSync(vectorPath('go-tpm-tools', 'EXPECTED_FROM_TESTS.json'), 'utf8')) as {
    logs: Record<string, { expected_pcrs: Record<'sha1' | 'sha256', Record<string, string>> }>;
  };
  const entry = expected.logs['ubuntu-2104-no-secure-boot.bin'];
  if (entry === undefined) {
    throw new Error('vector missing');
  }
  return entry.expected_pcrs;
}

/**
 * An independent replay of an ASCII ima-ng log, written from the kernel's template layout and not
 * from the emulator's code: per line, template data = u32le(len) ‖ "alg:" ‖ 0 ‖ digest, then
 * u32le(len) ‖ path ‖ 0; the logged hash must be SHA-1 of it (zeros for a violation); each bank extends
 * H_bank(data), or all-ones for a violation.
 */
function replayImaLog(text: string): { sha1: Buffer; sha256: Buffer; bootAggregate: string } {
  let sha1 = Buffer.alloc(20);
  let sha256 = Buffer.alloc(32);
  let bootAggregate = '';
  for (const line of text.split('\n').filter((l) => l.length > 0)) {
    const [pcr, templateHash, template, digestField, ...rest] = line.split(' ');
    const filePath = rest.join(' ');
    expect([pcr, template]).to.deep.equal(['10', 'ima-ng']);
    const [alg, hex] = (digestField as string).split(':') as [string, string];
    const digestPart = Buffer.concat([Buffer.from(`${alg}:`, 'ascii'), Buffer.from([0]), Buffer.from(hex, 'hex')]);
    const namePart = Buffer.concat([Buffer.from(filePath, 'utf8'), Buffer.from([0])]);
    const length = (n: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(n);
      return b;
    };
    const data = Buffer.concat([length(digestPart.length), digestPart, length(namePart.length), namePart]);
    const violation = /^0+$/.test(templateHash as string);
    if (!violation) {
      expect(templateHash).to.equal(createHash('sha1').update(data).digest('hex'));
    }
    const extend1 = violation ? Buffer.alloc(20, 0xff) : createHash('sha1').update(data).digest();
    const extend256 = violation ? Buffer.alloc(32, 0xff) : createHash('sha256').update(data).digest();
    sha1 = createHash('sha1').update(sha1).update(extend1).digest();
    sha256 = createHash('sha256').update(sha256).update(extend256).digest();
    if (filePath === 'boot_aggregate') {
      bootAggregate = hex;
    }
  }
  return { sha1, sha256, bootAggregate };
}

async function emulateImaAndCheck(tpm: Tpm, dir: string): Promise<void> {
  const logPath = path.join(dir, `ascii_runtime_measurements-${tpm.kind}`);
  const ima = new ImaEmulator({ tpm, logPath });
  await ima.start();
  const files = Array.from({ length: 40 }, (_, i) => ({ path: `/usr/bin/tool ${i}-${randomInt(1000)}`, content: new Uint8Array(randomBytes(64)) }));
  await ima.measure(files.slice(0, 20));
  await ima.violation('/var/log/being-written');
  await ima.measure(files.slice(20));
  expect(ima.entryCount).to.equal(42);
  const replay = replayImaLog(await readFile(logPath, 'utf8'));
  const pcr10 = { sha1: (await tpm.readPcrs('sha1', [10])).get(10), sha256: (await tpm.readPcrs('sha256', [10])).get(10) };
  expect(Buffer.from(pcr10.sha1 as Uint8Array).toString('hex')).to.equal(replay.sha1.toString('hex'));
  expect(Buffer.from(pcr10.sha256 as Uint8Array).toString('hex')).to.equal(replay.sha256.toString('hex'));
  const boot = await tpm.readPcrs('sha256', [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect(replay.bootAggregate).to.equal(createHash('sha256').update(Buffer.concat([...boot.values()])).digest('hex'));
}

describe('emulated boot and IMA measurements (real swtpm)', function () {
  this.timeout(60_000);
  let fixture: SwtpmFixture;
  let tpm: Tpm2ToolsTpm;
  let dir: string;

  before(async () => {
    fixture = await startTestSwtpm({ manufactureEk: false });
    tpm = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti });
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-ima-test-'));
  });

  after(async () => {
    await tpm?.close();
    await fixture?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('replays the fixture UEFI log into swtpm: PCRs 0-9 and 14 equal go-tpm-tools\' expected values', async () => {
    const result = await replayBootLog(tpm, readFileSync(FIXTURE_LOG));
    expect(result.banks).to.deep.equal(['sha1', 'sha256']);
    expect(result.pcrs).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]);
    const expected = upstreamPcrs();
    for (const bank of ['sha1', 'sha256'] as const) {
      const values = await tpm.readPcrs(bank, result.pcrs);
      const actual = Object.fromEntries([...values].map(([index, value]) => [String(index), Buffer.from(value).toString('hex')]));
      expect(actual, bank).to.deep.equal(expected[bank]);
    }
  });

  it('refuses to replay into PCRs that are already extended', async () => {
    const error = await replayBootLog(tpm, readFileSync(FIXTURE_LOG)).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error?.code).to.equal('ERR_TPM_ACCESS');
    expect(error?.message).to.equal('sha1 PCR 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14 already extended: replay a boot log only into a freshly started TPM');
  });

  it('refuses a log that starts at locality 3 (StartupLocality event)', async () => {
    const error = await replayBootLog(tpm, readFileSync(vectorPath('go-tpm-tools', 'eventlogs', 'glinux-alex.bin'))).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error?.code).to.equal('ERR_INVALID_PARAMETER_VALUE');
    expect(error?.message).to.equal(
      'eventLog: the log starts at locality 3 (StartupLocality event); a TPM started from locality 0 cannot reproduce its PCR 0',
    );
  });

  it('IMA emulator on swtpm: PCR 10 (sha1 and sha256) equals an independent replay of its log', async () => {
    await emulateImaAndCheck(tpm, dir);
  });

  it('IMA emulator on the software TPM: same result', async () => {
    const software = await createSoftwareTpm({ ekAlgorithm: 'ecc' });
    await replayBootLog(software, readFileSync(FIXTURE_LOG));
    await emulateImaAndCheck(software, dir);
  });

  it('refuses an IMA path that would forge a second log line', async () => {
    const ima = new ImaEmulator({ tpm, logPath: path.join(dir, 'forged') });
    const error = await ima.measure([{ path: '/x\n10 00 ima-ng sha256:00 /y', content: new Uint8Array(1) }]).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error?.code).to.equal('ERR_INVALID_PARAMETER_VALUE');
    expect(error?.message).to.match(/^path: an IMA path must be non-empty and on one line: /);
  });
});
