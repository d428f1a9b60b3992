import { hash } from 'node:crypto';
import { pcrBankSize } from '../hash-algorithms.js';
import { digestNgSize, nameNgSize, TemplateDataWriter } from './template-data.js';
import { copyLatin1 } from './template-digests.js';

/** The file digest algorithms of `ima-ng` lines the index covers (those of the fast path), by hex length of the digest. */
const ALGORITHM_BY_HEX_LENGTH: ReadonlyMap<number, string> = new Map((['sha1', 'sha256'] as const).map((bank) => [pcrBankSize(bank) * 2, bank]));

/**
 * The policy's `digests` as the set of SHA-256 hashes of the `ima-ng` template data each
 * (path, digest) pair gives: `d-ng` with a `sha256:` (64 hex digits) or `sha1:` (40) prefix, then
 * `n-ng` with the path. The replay's hot path computes that very hash for the sha256 bank, so
 * looking it up here accepts a listed line with no path string sliced out of the text and no
 * string hashed or compared (a `Map` keyed by a fresh slice costs about 0.35 µs a line).
 *
 * A hit proves the pair is listed: the template data encodes (digest, path bytes) one to one
 * (sizes in front of each field, ima_template_lib.c), and SHA-256 has no known second preimage.
 * Only ASCII paths are indexed, the only ones the fast path takes (the UTF-8 encoding folds
 * distinct lone surrogates into the same bytes, where the policy compares strings).
 *
 * Built with the compiled policy and never changed after: one SHA-256 per listed digest, which
 * takes compiling a 50,000-path policy from 25–40 ms to 80–150 ms on the loaded 2-core machine (once
 * per policy: compiled policies are cached).
 */
export class ImaNgPolicyIndex {
  private readonly table: HashTable;

  constructor(digests: ReadonlyMap<string, readonly string[]>) {
    this.table = new HashTable(templateHashes(digests));
  }

  /**
   * Whether the SHA-256 whose bytes `words` views (eight 32-bit words in the platform's byte
   * order, as `TemplateDigests.sha256Words`) is the template data hash of a listed pair.
   */
  has(words: Int32Array): boolean {
    return this.table.has(words);
  }
}

/** The SHA-256 (latin1) of the ima-ng template data of every listed pair with an ASCII path. */
function templateHashes(digests: ReadonlyMap<string, readonly string[]>): string[] {
  const hashes: string[] = [];
  let scratch = Buffer.allocUnsafe(512);
  for (const [path, list] of digests) {
    if (!/^[\x00-\x7f]*$/.test(path)) {
      continue;
    }
    for (const hex of list) {
      const algorithm = ALGORITHM_BY_HEX_LENGTH.get(hex.length);
      if (algorithm === undefined) {
        continue;
      }
      const size = digestNgSize(algorithm.length, hex.length / 2) + nameNgSize(path.length);
      if (size > scratch.length) {
        scratch = Buffer.allocUnsafe(size * 2);
      }
      const writer = new TemplateDataWriter(scratch.subarray(0, size));
      if (writer.digestNg(algorithm, algorithm.length, hex)) {
        writer.nameNg(path, path.length);
        hashes.push(hash('sha256', writer.data, 'binary'));
      }
    }
  }
  return hashes;
}

const WORDS = 8;

/**
 * A set of SHA-256 values in flat typed arrays: eight words per value (read through an Int32Array
 * over the value's bytes, in the platform's byte order, as the lookup reads them), and an
 * open-addressing table (at most half full, linear probing) keyed by the first word — already
 * uniformly spread, being hash output. A lookup reads the candidate's words in place, where a
 * `Set<string>` would first hash the fresh 32-character string and then chase the stored one.
 */
class HashTable {
  private readonly mask: number;
  /** Value number + 1 per slot, 0 for an empty slot. */
  private readonly slots: Int32Array;
  private readonly words: Int32Array;

  /** `values`: SHA-256 values as latin1 strings. */
  constructor(values: readonly string[]) {
    let size = 16;
    while (size < values.length * 2) {
      size *= 2;
    }
    this.mask = size - 1;
    this.slots = new Int32Array(size);
    this.words = new Int32Array(values.length * WORDS);
    const bytes = new Uint8Array(WORDS * 4);
    const words = new Int32Array(bytes.buffer);
    values.forEach((value, index) => {
      copyLatin1(value, bytes);
      this.words.set(words, index * WORDS);
      let slot = (words[0] as number) & this.mask;
      while (this.slots[slot] !== 0) {
        slot = (slot + 1) & this.mask;
      }
      this.slots[slot] = index + 1;
    });
  }

  has(value: Int32Array): boolean {
    const first = value[0] as number;
    for (let slot = first & this.mask; ; slot = (slot + 1) & this.mask) {
      const index = (this.slots[slot] as number) - 1;
      if (index < 0) {
        return false;
      }
      const at = index * WORDS;
      if (this.words[at] === first && this.restEquals(at, value)) {
        return true;
      }
    }
  }

  private restEquals(at: number, value: Int32Array): boolean {
    for (let i = 1; i < WORDS; i++) {
      if (this.words[at + i] !== value[i]) {
        return false;
      }
    }
    return true;
  }
}
