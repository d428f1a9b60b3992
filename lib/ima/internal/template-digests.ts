import { hash } from 'node:crypto';
import { pcrBankSize, type ImaHashAlgorithm, type PcrBank } from '../hash-algorithms.js';

const SHA256_SIZE = pcrBankSize('sha256');

/**
 * The hashes of one line's template data a round needs — one rule for the ima-ng fast path and the
 * full validator (replay-round.ts), so that both hold a line to the same hash and extend the same banks:
 *
 * - `sha1`, `sha256`, `sha384`, `sha512`: the bank's hash for each bank of PCR 10 replayed (`Pcr10Replay.extend`),
 *   and SHA-256 also when `wantSha256` (the fast path looks a line up in the policy by it);
 * - `logged`: the log's hash (`ima.log_hash_alg`, sha1 by default) of the template data, which the
 *   line's logged template hash must equal, when the caller asks for it (`compute(data, true)`: a
 *   line the quote does not bind) or when it costs nothing (the log's algorithm is a replayed
 *   bank's); otherwise '' and the logged hash is not compared: the quote binds the template data
 *   itself, so a line whose logged hash alone was changed changes nothing that is trusted (docs/ima.md,
 *   "Which lines are held to their logged template hash");
 * - each computed at most once: the log's hash is the bank's when they are the same algorithm.
 *
 * `compute` sets the fields (latin1 strings, one char per byte; '' for a hash not needed)
 * rather than returning an object: it runs for every line, and the rule is fixed for the round
 * (all but `withLogged`, which the round sets per line).
 * SHA-256 is also copied once into bytes: into the second half of `sha256ExtendInput`, which the
 * sha256 bank's extend fills with its PCR value and hashes as it is (no second copy of the digest),
 * and which the policy index reads as words (`sha256Words`): reading a byte array costs less than
 * each reader taking the string apart char by char.
 */
export class TemplateDigests {
  sha1 = '';
  sha256 = '';
  sha384 = '';
  sha512 = '';
  logged = '';
  /** `PCR ‖ SHA-256`: the bytes of `sha256` (when computed) in its second half; the first half is the extend's to fill. */
  readonly sha256ExtendInput = new Uint8Array(2 * SHA256_SIZE);
  /** The bytes of `sha256` as eight 32-bit words in the platform's byte order. */
  readonly sha256Words = new Int32Array(this.sha256ExtendInput.buffer, SHA256_SIZE, SHA256_SIZE / 4);
  private readonly sha256Bytes = this.sha256ExtendInput.subarray(SHA256_SIZE);
  /** Whether the log's hash is a replayed bank's: then it is computed, and compared, on every line. */
  private readonly loggedIsReplayed: boolean;
  private readonly bankSha1: boolean;
  private readonly bankSha256: boolean;
  private readonly bankSha384: boolean;
  private readonly bankSha512: boolean;

  constructor(
    private readonly logHash: ImaHashAlgorithm,
    banks: readonly PcrBank[],
    wantSha256: boolean,
  ) {
    this.loggedIsReplayed = loggedHashIsReplayed(logHash, banks);
    this.bankSha1 = banks.includes('sha1');
    this.bankSha256 = banks.includes('sha256') || wantSha256;
    this.bankSha384 = banks.includes('sha384');
    this.bankSha512 = banks.includes('sha512');
  }

  /** `withLogged`: compute `logged` even when it costs a hash of its own (a line the quote does not bind). */
  compute(data: Uint8Array, withLogged: boolean): void {
    const name = this.logHash.name;
    const logged = withLogged || this.loggedIsReplayed;
    this.sha1 = this.bankSha1 || (logged && name === 'sha1') ? hash('sha1', data, 'binary') : '';
    if (this.bankSha256 || (logged && name === 'sha256')) {
      this.sha256 = hash('sha256', data, 'binary');
      copyLatin1(this.sha256, this.sha256Bytes);
    } else {
      this.sha256 = '';
    }
    this.sha384 = this.bankSha384 || (logged && name === 'sha384') ? hash('sha384', data, 'binary') : '';
    this.sha512 = this.bankSha512 || (logged && name === 'sha512') ? hash('sha512', data, 'binary') : '';
    this.logged = !logged ? '' : name === 'sha1' ? this.sha1 : name === 'sha256' ? this.sha256 : name === 'sha384' ? this.sha384 : name === 'sha512' ? this.sha512 : hash(this.logHash.nodeName, data, 'binary');
  }
}

/** Whether the log's hash of the template data is that of a replayed bank, and so computed for every line anyway. */
export function loggedHashIsReplayed(logHash: ImaHashAlgorithm, banks: readonly PcrBank[]): boolean {
  return banks.some((bank) => bank === logHash.name);
}

/** Copies the bytes of a latin1 string (one char per byte) into `into`, from its start. */
export function copyLatin1(text: string, into: Uint8Array): void {
  for (let i = 0; i < text.length; i++) {
    into[i] = text.charCodeAt(i);
  }
}
