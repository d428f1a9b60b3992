import { hash } from 'node:crypto';
import { pcrBankSize, type PcrBank } from '../hash-algorithms.js';
import type { Pcr10Values } from '../ima-replay-state.js';
import type { TemplateDigests } from './template-digests.js';

const SHA1_SIZE = pcrBankSize('sha1');
const SHA256_SIZE = pcrBankSize('sha256');
const ONES_SHA1 = '\xff'.repeat(SHA1_SIZE);
const ONES_SHA256 = '\xff'.repeat(SHA256_SIZE);

/**
 * Running PCR 10 in the banks being replayed (the quoted one, or sha1 and sha256 when there is no
 * quote): `PCR = H_bank(PCR ‖ H_bank(template data))` (TPM 2.0 Part 1 §17.6.2 "PCR Extend"; the
 * kernel extends every allocated bank with that bank's hash of the template data,
 * `ima_calc_field_array_hash`). A violation or ToMToU entry, logged with an all-zero template hash,
 * is extended with all-ones instead (kernel `ima_add_violation`: "a violation extends PCR with
 * 0xFF…"; Keylime `ast.Entry` FF_HASH). Keylime replays only the quoted bank too
 * (`ima.process_measurement_list`: `running_hash = hash_alg.hash(running_hash + entry.pcr_template_hash)`).
 *
 * Digests and values are latin1 strings (one char per byte): node:crypto's one-shot
 * `hash(…, 'binary')` returns one about three times cheaper than a Buffer (no backing store to
 * allocate), and copying it into the `PCR ‖ digest` scratch buffer is a short loop.
 */
export class Pcr10Replay {
  /** The sha1 bank's value, undefined when that bank is not replayed. */
  private sha1: string | undefined;
  private sha256: string | undefined;
  private readonly scratch1 = Buffer.alloc(2 * SHA1_SIZE);
  private readonly scratch256 = Buffer.alloc(2 * SHA256_SIZE);

  /** Replays `banks`, each from its value in `start` (lowercase hex), which must hold it. */
  constructor(start: Pcr10Values, banks: readonly PcrBank[]) {
    this.sha1 = banks.includes('sha1') ? latin1(start, 'sha1') : undefined;
    this.sha256 = banks.includes('sha256') ? latin1(start, 'sha256') : undefined;
  }

  /**
   * Extends each replayed bank with the template data's digest in that bank, as computed by
   * `digests` for the line (the sha256 bank from its bytes); the digest of a bank not replayed is
   * ignored.
   */
  extend(digests: TemplateDigests): void {
    if (this.sha1 !== undefined) {
      this.sha1 = extendBank('sha1', this.scratch1, this.sha1, digests.sha1);
    }
    const sha256 = this.sha256;
    if (sha256 !== undefined) {
      if (digests.sha256.length !== SHA256_SIZE) {
        throw new Error('PCR 10 replay: a sha256 extend needs the sha256 digest');
      }
      const scratch = this.scratch256;
      for (let i = 0; i < SHA256_SIZE; i++) {
        scratch[i] = sha256.charCodeAt(i);
        scratch[SHA256_SIZE + i] = digests.sha256Bytes[i] as number;
      }
      this.sha256 = hash('sha256', scratch, 'binary');
    }
  }

  /** Extends the replayed banks as the kernel does for a violation: with all-ones. */
  extendViolation(): void {
    if (this.sha1 !== undefined) {
      this.sha1 = extendBank('sha1', this.scratch1, this.sha1, ONES_SHA1);
    }
    if (this.sha256 !== undefined) {
      this.sha256 = extendBank('sha256', this.scratch256, this.sha256, ONES_SHA256);
    }
  }

  /**
   * Whether `bank` (which must be replayed) holds `quoted` (latin1). This runs after every line, so
   * it must cost next to nothing: a plain comparison, which stops at the first byte that differs
   * (after almost every line, the first). It need not take constant time: both values are public —
   * the quote is signed data the node sent, the replayed value is computed from the list it sent.
   */
  matches(bank: PcrBank, quoted: string): boolean {
    return (bank === 'sha1' ? this.sha1 : this.sha256) === quoted;
  }

  /** The replayed banks' values as lowercase hex. */
  snapshot(): Pcr10Values {
    return { ...hexOf('sha1', this.sha1), ...hexOf('sha256', this.sha256) };
  }
}

function latin1(start: Pcr10Values, bank: PcrBank): string {
  const value = start[bank];
  if (value === undefined) {
    throw new Error(`PCR 10 replay: no start value in the ${bank} bank`);
  }
  return Buffer.from(value, 'hex').toString('latin1');
}

function hexOf(bank: PcrBank, value: string | undefined): Pcr10Values {
  return value === undefined ? {} : { [bank]: Buffer.from(value, 'latin1').toString('hex') };
}

/**
 * `H(PCR ‖ digest)` with `scratch` as the input buffer (twice the bank size). The copies are
 * JavaScript loops: cheaper here than a native `Buffer#write` call each. A digest of the wrong size
 * (a caller that did not compute this bank's) is a programming error, refused rather than extended.
 */
function extendBank(bank: PcrBank, scratch: Buffer, pcr: string, digest: string): string {
  const size = pcr.length;
  if (digest.length !== size) {
    throw new Error(`PCR 10 replay: a ${bank} extend needs a ${size}-byte digest`);
  }
  for (let i = 0; i < size; i++) {
    scratch[i] = pcr.charCodeAt(i);
    scratch[size + i] = digest.charCodeAt(i);
  }
  return hash(bank, scratch, 'binary');
}
