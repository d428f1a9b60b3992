import { pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/** Keylime's token hash (spec §10.2): PBKDF2-HMAC-SHA256, 600 000 iterations, 16-byte salt. */
export const TOKEN_HASH_ITERATIONS = 600_000;
const SALT_BYTES = 16;
const HASH_BYTES = 32;

export interface StoredTokenHash {
  /** base64 */
  readonly salt: string;
  /** base64 */
  readonly hash: string;
}

/** Hashes a token's secret for storage (on libuv's thread pool: the event loop does not wait). */
export async function hashTokenSecret(secret: string, iterations = TOKEN_HASH_ITERATIONS): Promise<StoredTokenHash> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await pbkdf2Async(secret, salt, iterations, HASH_BYTES, 'sha256');
  return { salt: salt.toString('base64'), hash: hash.toString('base64') };
}

/** True when `secret` hashes to `stored` (constant-time comparison). */
export async function tokenSecretMatches(secret: string, stored: StoredTokenHash, iterations = TOKEN_HASH_ITERATIONS): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  if (expected.length !== HASH_BYTES) return false;
  const actual = await pbkdf2Async(secret, Buffer.from(stored.salt, 'base64'), iterations, HASH_BYTES, 'sha256');
  return timingSafeEqual(actual, expected);
}
