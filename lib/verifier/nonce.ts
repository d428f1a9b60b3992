import { randomBytes } from 'node:crypto';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** Bytes below this (4 × 62) map evenly onto the 62 characters; the rest are drawn again. */
const EVEN_BYTES = 248;
/** CSPRNG bytes fetched at once: about 200 nonces, one call into OpenSSL instead of twenty per nonce. */
const POOL_BYTES = 4096;

/** Keylime's quote nonce length (`random_password(20)`; spec §2). */
export const NONCE_LENGTH = 20;

let pool = Buffer.alloc(0);
let taken = 0;

/** The next unused CSPRNG byte: each byte of the pool is used once, then the pool is fetched anew. */
function nextRandomByte(): number {
  if (taken >= pool.length) {
    pool = randomBytes(POOL_BYTES);
    taken = 0;
  }
  const byte = pool[taken] as number;
  taken += 1;
  return byte;
}

/** A fresh nonce: `length` letters and digits drawn uniformly with the CSPRNG. */
export function freshNonce(length = NONCE_LENGTH): string {
  let out = '';
  while (out.length < length) {
    const byte = nextRandomByte();
    if (byte < EVEN_BYTES) {
      out += ALPHANUMERIC[byte % ALPHANUMERIC.length];
    }
  }
  return out;
}
