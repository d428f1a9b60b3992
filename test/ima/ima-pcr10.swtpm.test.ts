import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { parseImaAsciiList, splitImaAsciiLines } from '../../lib/ima/ascii-list-parser.js';
import { formatImaAsciiLine, type UntrustedImaEntry } from '../../lib/ima/internal/ima-entry.js';
import { IMA_EVENTS } from '../../lib/ima/ima-failure.js';
import { verifyImaList } from '../../lib/ima/verify-ima-list.js';
import { startSwtpm, type SwtpmHandle } from '../../lib/tpm-access/swtpm-manager.js';
import { verificationVector } from './ima-vectors.js';

const run = promisify(execFile);

const BANKS = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
type Bank = (typeof BANKS)[number];
type Pcr10 = Record<Bank, string>;
const SIZE: Record<Bank, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/**
 * PCR 10 replay against a real TPM: the test plays the kernel, extending swtpm's PCR 10 in the sha1,
 * sha256, sha384 and sha512 banks with each entry's template data digest in that bank (all-ones of
 * the bank's size for a violation), then reads the PCR back with tpm2_pcrread and checks that our
 * replay of the log reaches exactly that value.
 */
describe('IMA PCR 10 replay against swtpm', function () {
  this.timeout(120_000);
  let dir: string;
  let tpm: SwtpmHandle;
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, TPM2TOOLS_TCTI: tpm.tcti });

  async function extend(entry: UntrustedImaEntry): Promise<void> {
    const violation = entry.templateHash.equals(Buffer.alloc(20));
    const digest = (bank: Bank): string => (violation ? 'ff'.repeat(SIZE[bank]) : createHash(bank).update(entry.templateData).digest('hex'));
    await run('tpm2_pcrextend', [`10:${BANKS.map((bank) => `${bank}=${digest(bank)}`).join(',')}`], { env: env() });
  }

  async function readPcr10(): Promise<Pcr10> {
    const { stdout } = await run('tpm2_pcrread', [BANKS.map((bank) => `${bank}:10`).join('+')], { env: env() });
    const read = (bank: Bank): string => {
      const value = new RegExp(`${bank}:\\s*\\n\\s*10\\s*:\\s*0x([0-9A-Fa-f]{${SIZE[bank] * 2}})`).exec(stdout)?.[1];
      if (value === undefined) {
        throw new Error(`unexpected tpm2_pcrread output: ${stdout}`);
      }
      return value.toLowerCase();
    };
    return { sha1: read('sha1'), sha256: read('sha256'), sha384: read('sha384'), sha512: read('sha512') };
  }

  /** A list with every template: boot_aggregate, ima-ng files, a violation, ima-sig, ima-buf and legacy ima. */
  function buildLog(): string {
    const lines: string[] = [];
    const ng = (digest: Buffer, file: string): void => {
      const name = Buffer.from(file);
      const u32 = (n: number): Buffer => Buffer.from(Uint32Array.of(n).buffer);
      const data = Buffer.concat([u32(6 + 2 + digest.length), Buffer.from('sha256:\0', 'latin1'), digest, u32(name.length + 1), name, Buffer.alloc(1)]);
      lines.push(`10 ${createHash('sha1').update(data).digest('hex')} ima-ng sha256:${digest.toString('hex')} ${file}`);
    };
    ng(randomBytes(32), 'boot_aggregate');
    for (let i = 0; i < 12; i++) {
      ng(randomBytes(32), `/usr/bin/tool-${i}`);
    }
    lines.push(`10 ${'00'.repeat(20)} ima-ng sha256:${'00'.repeat(32)} /var/log/open-writers`);
    lines.push(...splitImaAsciiLines(verificationVector('signatures_2_entries.ascii')));
    lines.push(...splitImaAsciiLines(verificationVector('keyrings_ima_buf_1_entry.ascii')));
    lines.push('10 d7026dc672344d3ee372217bdbc7395947788671 ima 6f66d1d8e2fffcc12dfcb78c04b81fe5b8bbae4e /usr/bin/kmod');
    return `${lines.join('\n')}\n`;
  }

  let log: string;
  let halfway: Pcr10;
  let final: Pcr10;
  let count: number;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-ima-swtpm-'));
    tpm = await startSwtpm({ stateDir: path.join(dir, 'tpm'), manufactureEk: false, pcrBanks: BANKS });
    log = buildLog();
    const entries = parseImaAsciiList(log);
    count = entries.length;
    for (const [index, entry] of entries.entries()) {
      await extend(entry);
      if (index + 1 === 10) {
        halfway = await readPcr10();
      }
    }
    final = await readPcr10();
  });

  after(async () => {
    await tpm?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const bank of BANKS) {
    it(`replays the log to the TPM's ${bank} PCR 10`, () => {
      const result = verifyImaList({ listText: log, startEntry: 0, quotedPcr10: { bank, value: final[bank] } });
      expect(result.failures).to.deep.equal([]);
      expect(result.pcr10[bank]).to.equal(final[bank]);
      expect(result.matchedEntries).to.equal(count);
    });

    it(`matches a ${bank} quote taken while the log was ahead, and continues from there`, () => {
      const first = verifyImaList({ listText: log, startEntry: 0, quotedPcr10: { bank, value: halfway[bank] } });
      expect(first.valid).to.equal(true);
      expect(first.matchedEntries).to.equal(10);
      const rest = splitImaAsciiLines(log).slice(10).map((l) => `${l}\n`).join('');
      const second = verifyImaList({ listText: rest, state: first.nextState, quotedPcr10: { bank, value: final[bank] } });
      expect(second.valid).to.equal(true);
      expect(second.nextState.pcr10).to.deep.equal({ [bank]: final[bank] });
    });
  }

  describe('tampered logs do not reach the TPM value', () => {
    const lines = (): string[] => splitImaAsciiLines(log);
    const check = (listText: string): string[] =>
      verifyImaList({ listText, startEntry: 0, quotedPcr10: { bank: 'sha256', value: final.sha256 } }).failures.map((f) => f.eventId);

    it('a changed digest, with the template hash recomputed to hide it', () => {
      const entries = parseImaAsciiList(log);
      const victim = entries[3]!;
      const forged = parseImaAsciiList(`${formatImaAsciiLine({ ...victim, digest: { ...victim.digest, hex: 'ee'.repeat(32) } })}\n`)[0]!;
      const line = formatImaAsciiLine({ ...forged, templateHash: createHash('sha1').update(forged.templateData).digest() });
      const tampered = lines().map((l, i) => (i === 3 ? line : l));
      expect(check(`${tampered.join('\n')}\n`)).to.deep.equal([IMA_EVENTS.pcrMismatch]);
    });

    it('a changed path', () => {
      expect(check(log.replace('/usr/bin/tool-5', '/usr/bin/tool-6'))).to.deep.equal([IMA_EVENTS.imaHash, IMA_EVENTS.pcrMismatch]);
    });

    it('a removed line', () => {
      expect(check(`${lines().filter((_, i) => i !== 7).join('\n')}\n`)).to.deep.equal([IMA_EVENTS.pcrMismatch]);
    });

    it('reordered lines', () => {
      const l = lines();
      [l[4], l[5]] = [l[5]!, l[4]!];
      expect(check(`${l.join('\n')}\n`)).to.deep.equal([IMA_EVENTS.pcrMismatch]);
    });

    it('a violation rewritten as an ordinary entry', () => {
      const entries = parseImaAsciiList(log);
      const index = entries.findIndex((e) => e.templateHash.equals(Buffer.alloc(20)));
      const violation = entries[index]!;
      const line = formatImaAsciiLine({ ...violation, templateHash: createHash('sha1').update(violation.templateData).digest() });
      expect(check(`${lines().map((l, i) => (i === index ? line : l)).join('\n')}\n`)).to.deep.equal([IMA_EVENTS.pcrMismatch]);
    });
  });
});
