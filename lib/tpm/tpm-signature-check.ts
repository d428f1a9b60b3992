import { constants, createPublicKey, KeyObject, verify, type VerifyKeyObjectInput } from 'node:crypto';
import { TPM_ALG_ECDSA, TPM_ALG_RSAPSS, TPM_ALG_RSASSA, algIdByName, algName, hashInfo, resolveHash } from './constants.js';
import { TpmKeyError } from './tpm-errors.js';
import { isEccSignature, type TpmtSignature } from './tpmt-signature.js';
import { parsePublicArea, type TpmtPublic } from './tpmt-public.js';
import { publicKeyFromTpmtPublic } from './tpmt-public-key.js';

/**
 * How a caller may hand over a signing key (AK, IAK): a node:crypto KeyObject (fastest: parse once,
 * cache, reuse), a PEM SubjectPublicKeyInfo string, TPM2B_PUBLIC or TPMT_PUBLIC bytes, or a parsed
 * TPMT_PUBLIC.
 */
export type SigningKeyInput = KeyObject | string | Uint8Array | TpmtPublic;

/**
 * The public key of `input`. Throws `TpmParseError` for malformed TPM bytes and `TpmKeyError` for a
 * key that is unusable (unsupported curve, point off the curve, unreadable PEM, a private key).
 */
export function signingKeyFrom(input: SigningKeyInput): KeyObject {
  if (input instanceof KeyObject) {
    if (input.type !== 'public') {
      throw new TpmKeyError(`expected a public key, got a ${input.type} key`);
    }
    return input;
  }
  if (typeof input === 'string') {
    try {
      return createPublicKey(input);
    } catch (error) {
      throw new TpmKeyError(`not a PEM public key (${(error as Error).message})`, { cause: error });
    }
  }
  return publicKeyFromTpmtPublic(input instanceof Uint8Array ? parsePublicArea(input) : input);
}

/** Key family of a node:crypto public key, as far as TPM signatures go. */
export function keyFamily(key: KeyObject): 'rsa' | 'ecc' | undefined {
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      return 'rsa';
    case 'ec':
      return 'ecc';
    default:
      return undefined;
  }
}

/** Resolves a signature scheme given as TPM_ALG_ID or name (`rsassa`, `ecdsa`), or undefined. */
export function resolveSignScheme(scheme: number | string): number | undefined {
  const id = typeof scheme === 'number' ? scheme : algIdByName(scheme);
  return id === TPM_ALG_RSASSA || id === TPM_ALG_RSAPSS || id === TPM_ALG_ECDSA ? id : undefined;
}

/**
 * Why `signature` may not be checked with `key` under the caller's expectations, or null if it may:
 * RSA keys sign with RSASSA or RSAPSS, ECC keys with ECDSA (Keylime `checkquote` accepts only RSASSA
 * for RSA; RSAPSS is accepted here too); `expectedHash`, and `expectedScheme` when given, must match.
 */
export function signatureSchemeProblem(
  key: KeyObject,
  signature: TpmtSignature,
  expectedScheme?: number,
): string | null {
  const family = keyFamily(key);
  const allowed = family === 'rsa' ? [TPM_ALG_RSASSA, TPM_ALG_RSAPSS] : family === 'ecc' ? [TPM_ALG_ECDSA] : [];
  if (!allowed.includes(signature.sigAlg)) {
    return `signature scheme ${algName(signature.sigAlg)} is not accepted for a ${key.asymmetricKeyType ?? 'unknown'} key`;
  }
  if (expectedScheme !== undefined && signature.sigAlg !== expectedScheme) {
    return `signature scheme ${algName(signature.sigAlg)} is not the expected ${algName(expectedScheme)}`;
  }
  return null;
}

/** Why the signature's hash is not the expected one, or null. */
export function signatureHashProblem(signature: TpmtSignature, expectedHash: number | string): string | null {
  const expected = resolveHash(expectedHash);
  if (expected === undefined) {
    return `expected hash algorithm ${String(expectedHash)} is not known`;
  }
  if (signature.hashAlg !== expected.algId) {
    return `signature hash ${algName(signature.hashAlg)} is not the expected ${expected.name}`;
  }
  return null;
}

/**
 * Checks `signature` over `data` with `key` (the TPM signs H_hashAlg(data); node:crypto hashes `data`
 * itself). RSAPSS accepts any salt length (TPMs differ: digest size or maximum). ECDSA r and s are
 * DER-encoded for OpenSSL. Call `signatureSchemeProblem` first; this only answers "does it verify".
 */
export function tpmSignatureVerifies(key: KeyObject, signature: TpmtSignature, data: Uint8Array): boolean {
  const call = verifyCall(key, signature);
  if (call === undefined) {
    return false;
  }
  try {
    return verify(call.hash, data, call.key, call.signature);
  } catch {
    // OpenSSL refuses some inputs outright (e.g. a signature longer than the modulus): not valid.
    return false;
  }
}

/** The arguments node:crypto's `verify` takes for `signature`, or undefined for a hash it cannot use. */
function verifyCall(key: KeyObject, signature: TpmtSignature): { hash: string; key: KeyObject | VerifyKeyObjectInput; signature: Uint8Array } | undefined {
  const hash = hashInfo(signature.hashAlg);
  if (hash === undefined) {
    return undefined;
  }
  if (isEccSignature(signature)) {
    return { hash: hash.nodeName, key, signature: derEcdsaSignature(signature.signatureR, signature.signatureS) };
  }
  if (signature.sigAlg === TPM_ALG_RSAPSS) {
    return {
      hash: hash.nodeName,
      key: { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
      signature: signature.sig,
    };
  }
  return { hash: hash.nodeName, key, signature: signature.sig };
}

/** DER `SEQUENCE { INTEGER r, INTEGER s }` (RFC 3279 §2.2.3) from the TPM's unsigned big-endian r, s. */
export function derEcdsaSignature(r: Uint8Array, s: Uint8Array): Uint8Array {
  const ri = derInteger(r);
  const si = derInteger(s);
  const body = ri.length + si.length;
  const header = [0x30, ...derLength(body)];
  const out = new Uint8Array(header.length + body);
  out.set(header);
  out.set(ri, header.length);
  out.set(si, header.length + ri.length);
  return out;
}

function derInteger(value: Uint8Array): Uint8Array {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) {
    start += 1;
  }
  const digits = value.length === 0 ? new Uint8Array([0]) : value.subarray(start);
  const pad = (digits[0] ?? 0) & 0x80 ? 1 : 0;
  const len = digits.length + pad;
  const header = [0x02, ...derLength(len)];
  const out = new Uint8Array(header.length + len);
  out.set(header);
  out.set(digits, header.length + pad);
  return out;
}

function derLength(n: number): number[] {
  if (n < 0x80) {
    return [n];
  }
  return n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
}
