import { hash } from 'node:crypto';
import { pcrBankSize, type PcrBank } from '../hash-algorithms.js';

const SHA1_SIZE = pcrBankSize('sha1');
const SHA256_SIZE = pcrBankSize('sha256');

/**
 * Running PCR 10 in the sha1 and sha256 banks: `PCR = H_bank(PCR ‖ H_bank(template data))`
 * (TPM 2.0 Part 1 §17.6.2 "PCR Extend"; the kernel extends every allocated bank with that bank's
 * hash of the template data, `ima_calc_field_array_hash`). A violation or ToMToU entry, logged with
 * an all-zero template hash, is extended with all-ones instead (kernel `ima_add_violation`:
 * "a violation extends PCR with 0xFF…"; Keylime `ast.Entry` FF_HASH).
 *
 * Two scratch buffers hold `PCR ‖ digest`, so an extend allocates nothing but the new PCR value.
 */
export class Pcr10Replay {
  private sha1: Buffer;
  private sha256: Buffer;
  private readonly scratch1 = Buffer.alloc(2 * SHA1_SIZE);
  private readonly scratch256 = Buffer.alloc(2 * SHA256_SIZE);
  private static readonly ONES_SHA1 = Buffer.alloc(SHA1_SIZE, 0xff);
  private static readonly ONES_SHA256 = Buffer.alloc(SHA256_SIZE, 0xff);

  constructor(start: { sha1: Buffer; sha256: Buffer }) {
    this.sha1 = Buffer.from(start.sha1);
    this.sha256 = Buffer.from(start.sha256);
  }

  /** Extends both banks with the template data's digests in each bank. */
  extend(sha1Digest: Buffer, sha256Digest: Buffer): void {
    this.sha1.copy(this.scratch1, 0);
    sha1Digest.copy(this.scratch1, SHA1_SIZE);
    this.sha1 = hash('sha1', this.scratch1, 'buffer');
    this.sha256.copy(this.scratch256, 0);
    sha256Digest.copy(this.scratch256, SHA256_SIZE);
    this.sha256 = hash('sha256', this.scratch256, 'buffer');
  }

  /** Extends both banks as the kernel does for a violation: with all-ones. */
  extendViolation(): void {
    this.extend(Pcr10Replay.ONES_SHA1, Pcr10Replay.ONES_SHA256);
  }

  value(bank: PcrBank): Buffer {
    return bank === 'sha1' ? this.sha1 : this.sha256;
  }

  /** Constant-time comparison of one bank with a quoted value (false when the sizes differ). */
  matches(bank: PcrBank, quoted: Buffer): boolean {
    const current = this.value(bank);
    if (current.length !== quoted.length) {
      return false;
    }
    // Constant time without a native call per entry (this runs after every line): OR of the XORs.
    let diff = 0;
    for (let i = 0; i < current.length; i++) {
      diff |= (current[i] as number) ^ (quoted[i] as number);
    }
    return diff === 0;
  }

  snapshot(): { sha1: string; sha256: string } {
    return { sha1: this.sha1.toString('hex'), sha256: this.sha256.toString('hex') };
  }
}
