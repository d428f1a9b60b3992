import { timingSafeEqual } from 'node:crypto';

/**
 * Constant-time equality of two byte strings (digests, tags, keys; STYLE 7): a length mismatch is
 * simply unequal, and equal lengths are compared with `crypto.timingSafeEqual`, so the time does not
 * tell where the first difference is.
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
