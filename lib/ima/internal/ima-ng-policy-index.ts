import { hash } from 'node:crypto';
import { digestNgSize, nameNgSize, TemplateDataWriter } from './template-data.js';

/** The file digest algorithms of `ima-ng` lines the index covers, by hex length of the digest. */
const ALGORITHM_BY_HEX_LENGTH: ReadonlyMap<number, string> = new Map([
  [64, 'sha256'],
  [40, 'sha1'],
]);

/**
 * The policy's `digests` as the set of SHA-256 hashes of the `ima-ng` template data each
 * (path, digest) pair gives: `d-ng` with a `sha256:` (64 hex digits) or `sha1:` (40) prefix, then
 * `n-ng` with the path. The replay's hot path computes that very hash for the sha256 bank, so
 * looking it up here accepts a listed line with no path string sliced out of the text and no
 * string compare (a `Map` keyed by a fresh slice costs about 0.35 µs a line).
 *
 * A hit proves the pair is listed: the template data encodes (digest, path bytes) one to one
 * (sizes in front of each field, ima_template_lib.c), and SHA-256 has no known second preimage.
 * Only ASCII paths are indexed; a path with other characters is looked up by string (the UTF-8
 * encoding folds distinct lone surrogates into the same bytes, where the policy compares strings).
 *
 * Built on the first lookup, so a policy that is compiled but never replayed does not pay for it
 * (one hash per listed digest).
 */
export class ImaNgPolicyIndex {
  private built: Set<string> | undefined;

  constructor(private readonly digests: ReadonlyMap<string, readonly string[]>) {}

  /** Whether `sha256` (latin1) is the template data hash of a listed pair. */
  has(sha256: string): boolean {
    this.built ??= this.build();
    return this.built.has(sha256);
  }

  private build(): Set<string> {
    const set = new Set<string>();
    for (const [path, list] of this.digests) {
      if (!/^[\x00-\x7f]*$/.test(path)) {
        continue;
      }
      for (const hex of list) {
        const algorithm = ALGORITHM_BY_HEX_LENGTH.get(hex.length);
        if (algorithm === undefined) {
          continue;
        }
        const writer = new TemplateDataWriter(Buffer.allocUnsafe(digestNgSize(algorithm.length, hex.length / 2) + nameNgSize(path.length)));
        if (writer.digestNg(algorithm, algorithm.length, hex)) {
          writer.nameNg(path, path.length);
          set.add(hash('sha256', writer.data, 'binary'));
        }
      }
    }
    return set;
  }
}
