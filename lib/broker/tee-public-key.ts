import { webcrypto } from 'node:crypto';
import { BoundedCache } from '../cache/bounded-cache.js';
import { isJsonOfAtMost } from './json-size.js';
import { KbsError } from './kbs-errors.js';

/** Key-wrapping algorithms the broker uses for resources (trustee `kbs/src/jwe`), by key type. */
export const RSA_WRAP_ALG = 'RSA-OAEP-256';
export const EC_WRAP_ALG = 'ECDH-ES+A256KW';
/** Content encryption of every resource. */
export const RESOURCE_ENC = 'A256GCM';

/** RSA moduli accepted for a tee-pubkey, in bits. */
const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 4096;
/**
 * Longest JSON text of a tee-pubkey, in characters: an RSA-4096 JWK with `alg`, `kid` and `use` is
 * under 900. The JWK is kept as received (the session row, the token, `TeeKeyCache`'s key and value),
 * so without a bound one `/attest` body (tens of MiB) would pin tens of MiB per cache entry.
 */
export const MAX_TEE_PUBKEY_JSON = 2048;
/** RSA public exponents accepted (odd, between these). */
const MIN_RSA_EXPONENT = 65537n;
const MAX_RSA_EXPONENT = 2n ** 33n - 1n;

/** The curves of EC tee-pubkeys (trustee wraps to both; guest-components' client can make either). */
const TEE_CURVES = ['P-256', 'P-521'] as const;
export type TeeCurve = (typeof TEE_CURVES)[number];

/** A checked tee-pubkey: the WebCrypto key jose encrypts to, and the JWE `alg` it is used with. */
export interface TeePublicKey {
  /** Imported once for its `alg` (RSA-OAEP with SHA-256, or ECDH on its curve), so jose never imports it again. */
  readonly key: webcrypto.CryptoKey;
  readonly alg: typeof RSA_WRAP_ALG | typeof EC_WRAP_ALG;
  /** The curve of an EC key (its ECDH-ES ephemeral key must be on it); null for RSA. */
  readonly curve: TeeCurve | null;
  /** The JWK as received (stored with the session and bound into tokens). */
  readonly jwk: Readonly<Record<string, unknown>>;
}

/**
 * Checks a `tee-pubkey` JWK: RSA (`n` of 2048 to 4096 bits, `e` odd from 65537 to 2^33 − 1, `alg`
 * RSA-OAEP-256) or EC P-256 or
 * P-521 (`x`, `y` a point on the curve, `alg` ECDH-ES+A256KW). `alg` is required, as kbs-types'
 * `TeePubKey` requires it: the key goes as sent into the session and the token's `tee-pubkey` claim,
 * which a trustee resource KBS could not read without it. Private members, other curves and KBS's
 * legacy RSA1_5 are refused, and so is a JWK whose JSON text is longer than `MAX_TEE_PUBKEY_JSON`.
 * Throws `KbsError` `JweError` — the broker cannot wrap a resource to this key.
 */
export async function parseTeePublicKey(jwk: unknown): Promise<TeePublicKey> {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) {
    throw new KbsError('JweError', 'tee-pubkey must be a JWK object');
  }
  if (!isJsonOfAtMost(jwk, MAX_TEE_PUBKEY_JSON)) {
    throw new KbsError('JweError', `tee-pubkey must be a JWK of at most ${MAX_TEE_PUBKEY_JSON} characters of JSON`);
  }
  const record = jwk as Record<string, unknown>;
  if ('d' in record || 'p' in record || 'q' in record) {
    throw new KbsError('JweError', 'tee-pubkey must be a public key');
  }
  if (record['kty'] === 'RSA' && hasStrings(record, ['n', 'e'])) {
    requireAlg(record, RSA_WRAP_ALG);
    return { key: await importRsa(record['n'] as string, record['e'] as string), alg: RSA_WRAP_ALG, curve: null, jwk: record };
  }
  const curve = TEE_CURVES.find((name) => name === record['crv']);
  if (record['kty'] === 'EC' && curve !== undefined && hasStrings(record, ['x', 'y'])) {
    requireAlg(record, EC_WRAP_ALG);
    const members = { kty: 'EC', crv: curve, x: record['x'] as string, y: record['y'] as string };
    return { key: await importKey(members, { name: 'ECDH', namedCurve: curve }, []), alg: EC_WRAP_ALG, curve, jwk: record };
  }
  throw new KbsError('JweError', 'tee-pubkey must be an RSA key (n, e) or an EC P-256 or P-521 key (x, y)');
}

function requireAlg(record: Record<string, unknown>, alg: TeePublicKey['alg']): void {
  if (record['alg'] !== alg) {
    throw new KbsError('JweError', `tee-pubkey alg must be ${alg}`);
  }
}

async function importRsa(n: string, e: string): Promise<webcrypto.CryptoKey> {
  if (!isUsableRsaExponent(e)) {
    throw new KbsError('JweError', 'tee-pubkey RSA exponent must be odd, at least 65537 and at most 2^33 - 1');
  }
  const key = await importKey({ kty: 'RSA', n, e }, { name: 'RSA-OAEP', hash: 'SHA-256' }, ['encrypt']);
  const bits = (key.algorithm as webcrypto.RsaHashedKeyAlgorithm).modulusLength;
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    throw new KbsError('JweError', `tee-pubkey RSA modulus must have ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits`);
  }
  return key;
}

/** The public key imported for jose's JWE encryption (WebCrypto checks an EC point is on its curve). */
async function importKey(
  members: webcrypto.JsonWebKey,
  algorithm: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams,
  usages: webcrypto.KeyUsage[],
): Promise<webcrypto.CryptoKey> {
  try {
    return await webcrypto.subtle.importKey('jwk', members, algorithm, false, usages);
  } catch (cause) {
    throw new KbsError('JweError', 'tee-pubkey is not a valid public key', { cause });
  }
}

/**
 * WebCrypto imports any exponent, but e = 1 makes RSA-OAEP's "encryption" the identity (the wrapped
 * content key would travel as good as in clear) and an even e has no inverse (RFC 8017 §3.1: odd).
 * Small odd exponents are legal RSA; 65537 is the floor FIPS 186-5 §A.1.1 sets for new keys and every
 * client makes, and 2^33 − 1 the ceiling of RustCrypto's `rsa` crate (trustee's JWE code), which
 * bounds the work of one encryption.
 */
function isUsableRsaExponent(base64url: string): boolean {
  const hex = Buffer.from(base64url, 'base64url').toString('hex');
  const e = hex === '' ? 0n : BigInt(`0x${hex}`);
  return e % 2n === 1n && e >= MIN_RSA_EXPONENT && e <= MAX_RSA_EXPONENT;
}

function hasStrings(record: Record<string, unknown>, fields: readonly string[]): boolean {
  return fields.every((field) => typeof record[field] === 'string' && /^[A-Za-z0-9_-]{1,1400}$/.test(record[field] as string));
}

/** Checked keys kept; the oldest is dropped first (entries are cheap to rebuild). */
const TEE_KEY_CACHE_LIMIT = 10_000;

/**
 * Checked tee-pubkeys by their JSON text: `/attest` checks the key it receives and stores that text
 * with the session; a cookie's resource request finds the key here instead of importing the JWK again.
 * Keyed by content, so a hit is the same key whatever worker or session it came from.
 */
export class TeeKeyCache {
  private readonly keys = new BoundedCache<string, TeePublicKey>(TEE_KEY_CACHE_LIMIT);

  /**
   * `parseTeePublicKey` of a received JWK, kept under `JSON.stringify(jwk)` (the text a session
   * stores). A node attesting again with the key it used before (guest-components keeps one per
   * client, as our `KbsClient` does) finds it here: the result is a function of that text, and only a
   * key that passed is kept. @throws KbsError `JweError` as `parseTeePublicKey`
   */
  parse(jwk: unknown): Promise<TeePublicKey> {
    return this.remembered(JSON.stringify(jwk) ?? '', () => jwk);
  }

  /** The key of a stored JWK text. @throws KbsError `JweError` as `parseTeePublicKey` */
  parseText(text: string): Promise<TeePublicKey> {
    return this.remembered(text, () => JSON.parse(text));
  }

  private async remembered(text: string, jwk: () => unknown): Promise<TeePublicKey> {
    const cached = this.keys.get(text);
    if (cached !== undefined) {
      return cached;
    }
    const key = await parseTeePublicKey(jwk());
    this.keys.set(text, key);
    return key;
  }
}
