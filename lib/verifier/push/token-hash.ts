import { pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/** Keylime's token hash (spec §10.2): PBKDF2-HMAC-SHA256, 600 000 iterations, 16-byte salt. */
export const TOKEN_HASH_ITERATIONS = 600_000;
const SALT_BYTES = 16;
const HASH_BYTES = 32;

/** A test process's lower count (`useTokenHashIterationsForTests`); unset everywhere else. */
let iterationsForTests: number | undefined;

/**
 * For test processes only (their mocha set-up file): tokens hash with `iterations` rounds instead of
 * 600 000, which cost the suite a few hundred ms of a core per push session; `undefined` restores
 * 600 000. Returns the count it replaces. Nothing in ironlime calls this (a structure test checks):
 * no setting, option or variable of the CLI, the config or the library reaches it, so a verifier
 * always hashes with 600 000, and `PushSessions` refuses fewer (`checkTokenHashIterations`).
 */
export function useTokenHashIterationsForTests(iterations: number | undefined): number | undefined {
  if (iterations !== undefined && (!Number.isInteger(iterations) || iterations < 1)) throw new RangeError('iterations must be a positive integer');
  const previous = iterationsForTests;
  iterationsForTests = iterations;
  return previous;
}

/** The rounds new token hashes and checks use: 600 000, or a test process's count. */
export function tokenHashIterations(): number {
  return iterationsForTests ?? TOKEN_HASH_ITERATIONS;
}

/**
 * Throws a RangeError for a round count below 600 000 unless this is a test process that lowered the
 * count (`useTokenHashIterationsForTests`): a lower count given to `PushSessions` anywhere else is a bug.
 */
export function checkTokenHashIterations(iterations: number): void {
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError('token hash iterations must be a positive integer');
  if (iterations < TOKEN_HASH_ITERATIONS && iterationsForTests === undefined) {
    throw new RangeError(`token hash iterations below ${TOKEN_HASH_ITERATIONS} are for test processes only`);
  }
}

export interface StoredTokenHash {
  /** base64 */
  readonly salt: string;
  /** base64 */
  readonly hash: string;
}

/** Hashes a token's secret for storage (on libuv's thread pool: the event loop does not wait). */
export async function hashTokenSecret(secret: string, iterations = tokenHashIterations()): Promise<StoredTokenHash> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await pbkdf2Async(secret, salt, iterations, HASH_BYTES, 'sha256');
  return { salt: salt.toString('base64'), hash: hash.toString('base64') };
}

/** True when `secret` hashes to `stored` (constant-time comparison). */
export async function tokenSecretMatches(secret: string, stored: StoredTokenHash, iterations = tokenHashIterations()): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  if (expected.length !== HASH_BYTES) return false;
  const actual = await pbkdf2Async(secret, Buffer.from(stored.salt, 'base64'), iterations, HASH_BYTES, 'sha256');
  return timingSafeEqual(actual, expected);
}
