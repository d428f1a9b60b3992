import { hash } from 'node:crypto';
import { pcrBankSize, type PcrBank } from '../hash-algorithms.js';
import type { Pcr10Values } from '../ima-replay-state.js';
import { copyLatin1, type TemplateDigests } from './template-digests.js';

const SHA1_SIZE = pcrBankSize('sha1');
const SHA256_SIZE = pcrBankSize('sha256');
const ONES_SHA1 = '\xff'.repeat(SHA1_SIZE);
const ONES_SHA256 = '\xff'.repeat(SHA256_SIZE);
const ONES_SHA384 = '\xff'.repeat(pcrBankSize('sha384'));
const ONES_SHA512 = '\xff'.repeat(pcrBankSize('sha512'));

/**
 * Running PCR 10 in the banks being replayed (the quoted one, or those of the state when there is no
 * quote): `PCR = H_bank(PCR ‖ H_bank(template data))` (TPM 2.0 Part 1 §17.6.2 "PCR Extend"; the
 * kernel extends every allocated bank with that bank's hash of the template data,
 * `ima_calc_field_array_hash`). A violation or ToMToU entry, logged with an all-zero template hash,
 * is extended with all-ones instead, as many as the bank's size (kernel `ima_add_violation`: "a
 * violation extends PCR with 0xFF…", every bank; Keylime `ast.Entry` FF_HASH of the quoted bank). Keylime replays only the quoted bank too
 * (`ima.process_measurement_list`: `running_hash = hash_alg.hash(running_hash + entry.pcr_template_hash)`).
 *
 * Digests and values are latin1 strings (one char per byte): node:crypto's one-shot
 * `hash(…, 'binary')` returns one about three times cheaper than a Buffer (no backing store to
 * allocate), and copying it into the `PCR ‖ digest` input buffer is a short loop.
 */
export class Pcr10Replay {
  /** The sha1 bank, undefined when that bank is not replayed. */
  private readonly sha1: ReplayedBank | undefined;
  private readonly sha256: ReplayedBank | undefined;
  private readonly sha384: ReplayedBank | undefined;
  private readonly sha512: ReplayedBank | undefined;

  /** Replays `banks`, each from its value in `start` (lowercase hex), which must hold it. */
  constructor(start: Pcr10Values, banks: readonly PcrBank[]) {
    this.sha1 = replayed(start, banks, 'sha1');
    this.sha256 = replayed(start, banks, 'sha256');
    this.sha384 = replayed(start, banks, 'sha384');
    this.sha512 = replayed(start, banks, 'sha512');
  }

  /**
   * Extends each replayed bank with the template data's digest in that bank, as computed by
   * `digests` for the line (the sha256 bank in place, in `sha256ExtendInput`); the digest of a bank not replayed is
   * ignored.
   */
  extend(digests: TemplateDigests): void {
    this.sha1?.extendLatin1(digests.sha1);
    if (this.sha256 !== undefined) {
      if (digests.sha256.length !== SHA256_SIZE) {
        throw new Error('PCR 10 replay: a sha256 extend needs the sha256 digest');
      }
      this.sha256.extendInPlace(digests.sha256ExtendInput);
    }
    this.sha384?.extendLatin1(digests.sha384);
    this.sha512?.extendLatin1(digests.sha512);
  }

  /** Extends the replayed banks as the kernel does for a violation: with all-ones. */
  extendViolation(): void {
    this.sha1?.extendLatin1(ONES_SHA1);
    this.sha256?.extendLatin1(ONES_SHA256);
    this.sha384?.extendLatin1(ONES_SHA384);
    this.sha512?.extendLatin1(ONES_SHA512);
  }

  /**
   * Whether `bank` (which must be replayed) holds `quoted` (latin1). This runs after every line, so
   * it must cost next to nothing: a plain comparison, which stops at the first byte that differs
   * (after almost every line, the first). It need not take constant time: both values are public —
   * the quote is signed data the node sent, the replayed value is computed from the list it sent.
   */
  matches(bank: PcrBank, quoted: string): boolean {
    return (bank === 'sha1' ? this.sha1 : bank === 'sha256' ? this.sha256 : bank === 'sha384' ? this.sha384 : this.sha512)?.value === quoted;
  }

  /** The replayed banks' values as lowercase hex. */
  snapshot(): Pcr10Values {
    return { ...hexOf('sha1', this.sha1), ...hexOf('sha256', this.sha256), ...hexOf('sha384', this.sha384), ...hexOf('sha512', this.sha512) };
  }
}

/**
 * One replayed bank: its value and `H(PCR ‖ digest)` with one reused input buffer (twice the bank
 * size), or in place in a caller's input that already holds the digest (the sha256 bank's, from
 * TemplateDigests). The copies into it are JavaScript loops: cheaper here than a native
 * `Buffer#write` or `set` call each.
 */
class ReplayedBank {
  /** A plain Uint8Array, as every other buffer `copyLatin1` writes: a Buffer too would make its stores polymorphic. */
  private readonly input: Uint8Array;
  /** The digest's half of `input`. */
  private readonly digestHalf: Uint8Array;

  constructor(
    private readonly bank: PcrBank,
    /** The bank's value, latin1. */
    public value: string,
  ) {
    this.input = new Uint8Array(2 * value.length);
    this.digestHalf = this.input.subarray(value.length);
  }

  /**
   * Extends with a latin1 digest. One of the wrong size (a caller that did not compute this bank's)
   * is a programming error, refused rather than extended.
   */
  extendLatin1(digest: string): void {
    if (digest.length !== this.value.length) {
      throw new Error(`PCR 10 replay: a ${this.bank} extend needs a ${this.value.length}-byte digest`);
    }
    copyLatin1(digest, this.digestHalf);
    this.extendInPlace(this.input);
  }

  /**
   * Extends with the digest in the second half of `input` (twice this bank's size), writing the
   * bank's value into its first half: the digest is not copied again.
   */
  extendInPlace(input: Uint8Array): void {
    if (input.length !== 2 * this.value.length) {
      throw new Error(`PCR 10 replay: a ${this.bank} extend needs a ${2 * this.value.length}-byte input`);
    }
    copyLatin1(this.value, input);
    this.value = hash(this.bank, input, 'binary');
  }
}

function replayed(start: Pcr10Values, banks: readonly PcrBank[], bank: PcrBank): ReplayedBank | undefined {
  return banks.includes(bank) ? new ReplayedBank(bank, latin1(start, bank)) : undefined;
}

function latin1(start: Pcr10Values, bank: PcrBank): string {
  const value = start[bank];
  if (value === undefined) {
    throw new Error(`PCR 10 replay: no start value in the ${bank} bank`);
  }
  return Buffer.from(value, 'hex').toString('latin1');
}

function hexOf(bank: PcrBank, replayed: ReplayedBank | undefined): Pcr10Values {
  return replayed === undefined ? {} : { [bank]: Buffer.from(replayed.value, 'latin1').toString('hex') };
}
