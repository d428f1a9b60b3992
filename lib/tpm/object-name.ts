import { createHash } from 'node:crypto';
import { algName, hashInfo } from './constants.js';
import { TpmKeyError } from './tpm-errors.js';
import { parseTpmtPublic, type TpmtPublic } from './tpmt-public.js';

/**
 * The TPM name of an object: nameAlg (u16, big-endian) ‖ H_nameAlg(TPMT_PUBLIC) (TPM 2.0 Part 1
 * §16 "Names"). Hashes the exact TPMT_PUBLIC bytes (`raw` of a parsed area, or the bytes given), never a
 * re-marshalled copy. A TPM2B_PUBLIC must be parsed first (`parseTpm2bPublic`) so the size is dropped.
 * Throws `TpmParseError` for malformed bytes and `TpmKeyError` when nameAlg is not a hash we know.
 */
export function tpmObjectName(publicArea: Uint8Array | TpmtPublic): Uint8Array {
  const pub = publicArea instanceof Uint8Array ? parseTpmtPublic(publicArea) : publicArea;
  const hash = hashInfo(pub.nameAlg);
  if (hash === undefined) {
    throw new TpmKeyError(`nameAlg ${algName(pub.nameAlg)} is not a hash algorithm`);
  }
  const digest = createHash(hash.nodeName).update(pub.raw).digest();
  const name = new Uint8Array(2 + digest.length);
  name[0] = pub.nameAlg >> 8;
  name[1] = pub.nameAlg & 0xff;
  name.set(digest, 2);
  return name;
}
