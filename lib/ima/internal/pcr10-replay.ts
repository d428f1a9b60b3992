import { hash } from 'node:crypto';
import { pcrBankSize, type PcrBank } from '../hash-algorithms.js';
import { Sha1Pcr } from './sha1-pcr.js';

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
 * The sha256 bank's digests and value are latin1 strings (one char per byte): node:crypto's
 * one-shot `hash(…, 'binary')` returns one about three times cheaper than a Buffer (no backing store
 * to allocate), and writing it into the `PCR ‖ digest` scratch buffer is one copy. The sha1 bank is
 * extended in JavaScript (Sha1Pcr), cheaper than a node:crypto call for its one-block message.
 */
export class Pcr10Replay {
  private readonly sha1: Sha1Pcr;
  private sha256: string;
  private readonly scratch256 = Buffer.alloc(2 * SHA256_SIZE);

  /** Starts from PCR values given as lowercase hex. */
  constructor(start: { sha1: string; sha256: string }) {
    this.sha1 = new Sha1Pcr(start.sha1);
    this.sha256 = Buffer.from(start.sha256, 'hex').toString('latin1');
  }

  /** Extends both banks with the template data's digests in each bank, as latin1 strings. */
  extendLatin1(sha1Digest: string, sha256Digest: string): void {
    this.sha1.extendLatin1(sha1Digest);
    const scratch = this.scratch256;
    for (let i = 0; i < SHA256_SIZE; i++) {
      scratch[SHA256_SIZE + i] = sha256Digest.charCodeAt(i);
    }
    this.advance256();
  }

  /** Extends both banks with the template data's digests in each bank, as bytes. */
  extend(sha1Digest: Uint8Array, sha256Digest: Uint8Array): void {
    this.sha1.extendBytes(sha1Digest);
    this.scratch256.set(sha256Digest, SHA256_SIZE);
    this.advance256();
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
    return bank === 'sha1' ? this.sha1.equalsLatin1(quoted) : this.sha256 === quoted;
  }

  /**
   * Hashes `PCR ‖ digest` in the sha256 bank, the digest being already in the scratch buffer. The
   * 32-byte copies are JavaScript loops: cheaper here than a native `Buffer#write` call each.
   */
  private advance256(): void {
    const scratch = this.scratch256;
    const pcr = this.sha256;
    for (let i = 0; i < SHA256_SIZE; i++) {
      scratch[i] = pcr.charCodeAt(i);
    }
    this.sha256 = hash('sha256', scratch, 'binary');
  }

  snapshot(): { sha1: string; sha256: string } {
    return { sha1: this.sha1.toHex(), sha256: Buffer.from(this.sha256, 'latin1').toString('hex') };
  }
}
