import { constants, publicDecrypt, type KeyObject } from 'node:crypto';
import { decodeEcdsaSignature } from './der-reader.js';
import { verifyEcdsaPrehashed } from './ecdsa-prehashed.js';
import { imaHashByLinuxId } from '../hash-algorithms.js';
import type { ImaDigest } from './ima-entry.js';
import type { ImaKeyrings } from '../ima-keyring.js';
import { bytesEqual } from '../../bytes/bytes-equal.js';

/**
 * IMA file signatures (`security.ima` xattr, logged in the `sig` field of `ima-sig`): kernel
 * `struct signature_v2_hdr` (security/integrity/integrity.h), checked as `integrity_digsig_verify`
 * / `asymmetric_verify` do and as Keylime's `file_signatures.ImaKeyrings` mirrors:
 *
 * | field | size |
 * |---|---|
 * | type | u8: 3 `EVM_IMA_XATTR_DIGSIG` or 5 `EVM_XATTR_PORTABLE_DIGSIG` |
 * | version | u8: 2 |
 * | hash_algo | u8, `enum hash_algo` |
 * | keyid | u32 big-endian, keyidv2 of the signing key |
 * | sig_size | u16 big-endian, must equal the bytes that follow |
 * | sig | RSA PKCS#1 v1.5 or DER ECDSA signature over the file digest itself |
 */

export interface ImaSignatureV2 {
  readonly type: number;
  readonly hashAlgo: number;
  readonly keyId: number;
  readonly signature: Buffer;
}

const HEADER_SIZE = 9;

/** DER `DigestInfo` prefixes (RFC 8017 §9.2 note 1) for the algorithms IMA signs with RSA. */
const DIGEST_INFO_PREFIX: Readonly<Record<string, string>> = {
  md5: '3020300c06082a864886f70d020505000410',
  sha1: '3021300906052b0e03021a05000414',
  sha224: '302d300d06096086480165030402040500041c',
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

/** Parses a v2 signature header, or returns `undefined` when the blob is not one. */
export function parseImaSignature(blob: Buffer): ImaSignatureV2 | undefined {
  if (blob.length < HEADER_SIZE) {
    return undefined;
  }
  const type = blob.readUInt8(0);
  if ((type !== 3 && type !== 5) || blob.readUInt8(1) !== 2) {
    return undefined;
  }
  const size = blob.readUInt16BE(7);
  if (size !== blob.length - HEADER_SIZE) {
    return undefined;
  }
  return { type, hashAlgo: blob.readUInt8(2), keyId: blob.readUInt32BE(3), signature: blob.subarray(HEADER_SIZE) };
}

function verifyRsa(key: KeyObject, algorithm: string, digest: Buffer, signature: Buffer): boolean {
  const prefix = DIGEST_INFO_PREFIX[algorithm];
  if (prefix === undefined) {
    return false;
  }
  let recovered: Buffer;
  try {
    recovered = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature);
  } catch {
    return false;
  }
  const expected = Buffer.concat([Buffer.from(prefix, 'hex'), digest]);
  return bytesEqual(recovered, expected);
}

function verifyEc(key: KeyObject, digest: Buffer, signature: Buffer): boolean {
  try {
    const { r, s } = decodeEcdsaSignature(signature);
    return verifyEcdsaPrehashed(key, digest, r, s);
  } catch {
    return false;
  }
}

/**
 * True when `blob` is a v2 IMA signature over `digest`, made with the digest's algorithm by a key
 * found (by key id) in `keyrings`. Any malformation, unknown algorithm or missing key gives false.
 */
export function verifyImaSignature(blob: Buffer, digest: ImaDigest, keyrings: ImaKeyrings): boolean {
  const header = parseImaSignature(blob);
  if (header === undefined) {
    return false;
  }
  const algorithm = imaHashByLinuxId(header.hashAlgo);
  if (algorithm === undefined || algorithm.name !== digest.algorithm) {
    return false;
  }
  const key = keyrings.find(header.keyId);
  if (key === undefined) {
    return false;
  }
  const digestBytes = Buffer.from(digest.hex, 'hex');
  return key.asymmetricKeyType === 'rsa'
    ? verifyRsa(key, algorithm.name, digestBytes, header.signature)
    : verifyEc(key, digestBytes, header.signature);
}
