import { randomInt } from 'node:crypto';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Keylime's quote nonce length (`random_password(20)`; spec §2). */
export const NONCE_LENGTH = 20;

/** A fresh nonce: `length` letters and digits drawn uniformly with the CSPRNG. */
export function freshNonce(length = NONCE_LENGTH): string {
  let out = '';
  for (let i = 0; i < length; i += 1) {
    out += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  }
  return out;
}
