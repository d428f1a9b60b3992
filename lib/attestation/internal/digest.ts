import { hash } from 'node:crypto';
import { hashInfoByName, type TpmHashInfo } from '../../tpm/constants.js';
import type { QuoteHashAlg } from '../algorithms.js';
import { bytesEqual } from '../../bytes/bytes-equal.js';

/** The shared table's entry for a quote hash algorithm (every `QuoteHashAlg` is in it). */
function quoteHash(alg: QuoteHashAlg): TpmHashInfo {
  const info = hashInfoByName(alg);
  if (info === undefined) {
    throw new Error(`${alg} is missing from HASH_ALGORITHMS`);
  }
  return info;
}

/**
 * `H(parts[0] ‖ parts[1] ‖ …)` with the named algorithm, a string part as its UTF-8. One one-shot
 * call over the joined bytes: a pull round makes several of these (PCR 16's binding, the boot
 * aggregates), and a `Hash` object with one update per part cost several times as much.
 */
export function hashParts(alg: QuoteHashAlg, ...parts: readonly (Uint8Array | string)[]): Uint8Array {
  const joined =
    parts.length === 1
      ? (parts[0] as Uint8Array | string)
      : Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'utf8') : part)));
  return new Uint8Array(hash(quoteHash(alg).nodeName, joined, 'buffer'));
}

/** Digest length in bytes. */
export function digestLength(alg: QuoteHashAlg): number {
  return quoteHash(alg).digestSize;
}


/** Lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * Constant-time test of a digest against reference values given as hex (tpm_policy entries). Every
 * entry is compared, so the time does not reveal which one matched.
 */
export function digestInHexList(value: Uint8Array, accepted: readonly string[]): boolean {
  let found = false;
  for (const hex of accepted) {
    const candidate = Buffer.from(hex, 'hex');
    if (candidate.length * 2 === hex.length && bytesEqual(value, candidate)) {
      found = true;
    }
  }
  return found;
}
