import type { ByteReader, BigEndianReader } from '../../bytes/byte-reader.js';

/**
 * Zero-copy reads for the verifier's hot path. `ByteReader.bytesOf` copies every field out, which
 * costs one ArrayBuffer per field; the `parse*` entry points instead copy their whole input once and
 * hand out views into that private copy, so the result still cannot change under the caller.
 * Only use these on a reader over bytes nobody else holds.
 */

/** The next `n` bytes as a view (bounds-checked like `bytesOf`). */
export function viewOf(r: ByteReader, n: number): Uint8Array {
  const at = r.offset;
  r.skip(n);
  return r.bytes.subarray(at, at + n);
}

/** A TPM2B (u16 size, then the bytes) as a view, with the size checked against `maxSize` first. */
export function tpm2bView(r: BigEndianReader, maxSize: number): Uint8Array {
  const size = r.u16();
  if (size > maxSize) {
    throw r.error(`size ${size} exceeds the maximum ${maxSize}`);
  }
  return viewOf(r, size);
}
