import { createHash } from 'node:crypto';

/** The TCG ids of the name hashes an AK may have (TPM 2.0 Part 2, TPM_ALG_ID), as node:crypto names them. */
const NAME_HASHES: ReadonlyMap<number, string> = new Map([
  [0x0004, 'sha1'],
  [0x000b, 'sha256'],
  [0x000c, 'sha384'],
  [0x000d, 'sha512'],
]);

/**
 * The hex TPM name of a key given as TPM2B_PUBLIC bytes, worked out here from the bytes alone (not with
 * lib/tpm's parser or `tpmObjectName`): nameAlg, the u16 after the area's type, then H_nameAlg over the
 * whole TPMT_PUBLIC that follows the TPM2B size (TPM 2.0 Part 1 §16).
 */
export function tpmNameHex(tpm2bPublic: Uint8Array): string {
  const bytes = Buffer.from(tpm2bPublic);
  const area = bytes.subarray(2, 2 + bytes.readUInt16BE(0));
  const nameAlg = area.readUInt16BE(2);
  const hash = NAME_HASHES.get(nameAlg);
  if (hash === undefined || area.length !== bytes.length - 2) throw new Error(`not a TPM2B_PUBLIC with a known nameAlg (0x${nameAlg.toString(16)})`);
  return Buffer.concat([bytes.subarray(4, 6), createHash(hash).update(area).digest()]).toString('hex');
}
