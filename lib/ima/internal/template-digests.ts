import { hash } from 'node:crypto';
import { pcrBankSize, type ImaHashAlgorithm, type PcrBank } from '../hash-algorithms.js';

const SHA256_SIZE = pcrBankSize('sha256');

/**
 * The hashes of one line's template data a round needs — one rule for the ima-ng fast path and the
 * full validator (replay-round.ts), so that both hold a line to the same hash and extend the same banks:
 *
 * - `logged`: the log's hash (`ima.log_hash_alg`, sha1 by default) of the template data, which every
 *   line's logged template hash must equal, quoted or not (Keylime `ast.Entry.invalid`: `ima_hash`);
 * - `sha1`, `sha256`: the bank's hash for each bank of PCR 10 replayed (`Pcr10Replay.extend`),
 *   and SHA-256 also when `wantSha256` (the fast path looks a line up in the policy by it);
 * - each computed at most once: the log's hash is the bank's when they are the same algorithm.
 *
 * `compute` sets the fields (latin1 strings, one char per byte; '' for a bank hash not needed)
 * rather than returning an object: it runs for every line, and the rule is fixed for the round.
 * SHA-256 is also copied once into bytes: into the second half of `sha256ExtendInput`, which the
 * sha256 bank's extend fills with its PCR value and hashes as it is (no second copy of the digest),
 * and which the policy index reads as words (`sha256Words`): reading a byte array costs less than
 * each reader taking the string apart char by char.
 */
export class TemplateDigests {
  sha1 = '';
  sha256 = '';
  logged = '';
  /** `PCR ‖ SHA-256`: the bytes of `sha256` (when computed) in its second half; the first half is the extend's to fill. */
  readonly sha256ExtendInput = new Uint8Array(2 * SHA256_SIZE);
  /** The bytes of `sha256` as eight 32-bit words in the platform's byte order. */
  readonly sha256Words = new Int32Array(this.sha256ExtendInput.buffer, SHA256_SIZE, SHA256_SIZE / 4);
  private readonly sha256Bytes = this.sha256ExtendInput.subarray(SHA256_SIZE);
  private readonly needSha1: boolean;
  private readonly needSha256: boolean;

  constructor(
    private readonly logHash: ImaHashAlgorithm,
    banks: readonly PcrBank[],
    wantSha256: boolean,
  ) {
    this.needSha1 = logHash.name === 'sha1' || banks.includes('sha1');
    this.needSha256 = logHash.name === 'sha256' || banks.includes('sha256') || wantSha256;
  }

  compute(data: Uint8Array): void {
    this.sha1 = this.needSha1 ? hash('sha1', data, 'binary') : '';
    if (this.needSha256) {
      this.sha256 = hash('sha256', data, 'binary');
      copyLatin1(this.sha256, this.sha256Bytes);
    }
    const name = this.logHash.name;
    this.logged = name === 'sha1' ? this.sha1 : name === 'sha256' ? this.sha256 : hash(this.logHash.nodeName, data, 'binary');
  }
}

/** Copies the bytes of a latin1 string (one char per byte) into `into`, from its start. */
export function copyLatin1(text: string, into: Uint8Array): void {
  for (let i = 0; i < text.length; i++) {
    into[i] = text.charCodeAt(i);
  }
}
