import { hash } from 'node:crypto';
import { pcrBankSize, type PcrBank } from '../hash-algorithms.js';

const SHA1_SIZE = pcrBankSize('sha1');
const SHA256_SIZE = pcrBankSize('sha256');
const ONES_SHA1 = '\xff'.repeat(SHA1_SIZE);
const ONES_SHA256 = '\xff'.repeat(SHA256_SIZE);

/**
 * Running PCR 10 in the sha1 and sha256 banks: `PCR = H_bank(PCR ‖ H_bank(template data))`
 * (TPM 2.0 Part 1 §17.6.2 "PCR Extend"; the kernel extends every allocated bank with that bank's
 * hash of the template data, `ima_calc_field_array_hash`). A violation or ToMToU entry, logged with
 * an all-zero template hash, is extended with all-ones instead (kernel `ima_add_violation`:
 * "a violation extends PCR with 0xFF…"; Keylime `ast.Entry` FF_HASH).
 *
 * Digests and values are latin1 strings (one char per byte): node:crypto's one-shot
 * `hash(…, 'binary')` returns one about three times cheaper than a Buffer (no backing store to
 * allocate), and copying it into the `PCR ‖ digest` scratch buffer is a short loop.
 */
export class Pcr10Replay {
  private sha1: string;
  private sha256: string;
  private readonly scratch1 = Buffer.alloc(2 * SHA1_SIZE);
  private readonly scratch256 = Buffer.alloc(2 * SHA256_SIZE);

  /** Starts from PCR values given as lowercase hex. */
  constructor(start: { sha1: string; sha256: string }) {
    this.sha1 = Buffer.from(start.sha1, 'hex').toString('latin1');
    this.sha256 = Buffer.from(start.sha256, 'hex').toString('latin1');
  }

  /** Extends both banks with the template data's digests in each bank, as latin1 strings. */
  extendLatin1(sha1Digest: string, sha256Digest: string): void {
    this.sha1 = extendBank('sha1', this.scratch1, this.sha1, sha1Digest);
    this.sha256 = extendBank('sha256', this.scratch256, this.sha256, sha256Digest);
  }

  /** Extends both banks with the template data's digests in each bank, as bytes. */
  extend(sha1Digest: Uint8Array, sha256Digest: Uint8Array): void {
    this.extendLatin1(Buffer.from(sha1Digest).toString('latin1'), Buffer.from(sha256Digest).toString('latin1'));
  }

  /** Extends both banks as the kernel does for a violation: with all-ones. */
  extendViolation(): void {
    this.extendLatin1(ONES_SHA1, ONES_SHA256);
  }

  /**
   * Whether one bank holds `quoted` (latin1). This runs after every line, so it must cost next to
   * nothing: a plain comparison, which stops at the first byte that differs (after almost every
   * line, the first). It need not take constant time: both values are public — the quote is signed
   * data the node sent, the replayed value is computed from the list it sent.
   */
  matches(bank: PcrBank, quoted: string): boolean {
    return (bank === 'sha1' ? this.sha1 : this.sha256) === quoted;
  }

  snapshot(): { sha1: string; sha256: string } {
    return { sha1: Buffer.from(this.sha1, 'latin1').toString('hex'), sha256: Buffer.from(this.sha256, 'latin1').toString('hex') };
  }
}

/**
 * `H(PCR ‖ digest)` with `scratch` as the input buffer (twice the bank size). The copies are
 * JavaScript loops: cheaper here than a native `Buffer#write` call each.
 */
function extendBank(bank: 'sha1' | 'sha256', scratch: Buffer, pcr: string, digest: string): string {
  const size = pcr.length;
  for (let i = 0; i < size; i++) {
    scratch[i] = pcr.charCodeAt(i);
    scratch[size + i] = digest.charCodeAt(i);
  }
  return hash(bank, scratch, 'binary');
}
