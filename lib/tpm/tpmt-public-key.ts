import { createPublicKey, type KeyObject } from 'node:crypto';
import { TPM_ALG_ECC, TPM_ALG_RSA, algName, curveInfo, curveInfoByJwkName } from './constants.js';
import { TpmKeyError } from './tpm-errors.js';
import { marshalTpmtPublic, type EccPublicArea, type RsaPublicArea, type TpmtPublic, type TpmtPublicFields } from './tpmt-public.js';

/**
 * The node:crypto public key of an RSA or ECC TPMT_PUBLIC. RSA exponent 0 means 65537; the modulus
 * must have `keyBits` bits' worth of bytes. ECC: the curve must be NIST P-256/384/521 and the point
 * must lie on it (OpenSSL checks this when importing the JWK). Throws `TpmKeyError` otherwise. Says
 * nothing about the key's attributes (see `checkAkAttributes`).
 */
export function publicKeyFromTpmtPublic(pub: TpmtPublicFields): KeyObject {
  if (pub.type === TPM_ALG_RSA) {
    const { keyBits, exponent } = pub.parameters;
    if (pub.unique.n.length === 0 || pub.unique.n.length * 8 !== keyBits) {
      throw new TpmKeyError(`RSA modulus is ${pub.unique.n.length} byte(s) but keyBits is ${keyBits}`);
    }
    const e = exponent === 0 ? 65537 : exponent;
    return importJwk({ kty: 'RSA', n: b64url(pub.unique.n), e: b64url(uintBytes(e)) });
  }
  if (pub.type === TPM_ALG_ECC) {
    const curve = curveInfo(pub.parameters.curveId);
    if (curve === undefined) {
      throw new TpmKeyError(`ECC curve 0x${pub.parameters.curveId.toString(16).padStart(4, '0')} is not supported`);
    }
    const x = fixedWidth(pub.unique.x, curve.size, 'x');
    const y = fixedWidth(pub.unique.y, curve.size, 'y');
    return importJwk({ kty: 'EC', crv: curve.jwkName, x: b64url(x), y: b64url(y) });
  }
  throw new TpmKeyError(`object type ${algName(pub.type)} has no asymmetric public key`);
}

/** A TPMT_PUBLIC template: every field but the key itself, which `tpmtPublicFromKey` fills in. */
export type TpmtPublicTemplate =
  | Omit<RsaPublicArea, 'unique'>
  | Omit<EccPublicArea, 'unique'>;

/**
 * Builds the TPMT_PUBLIC a TPM would report for `key` created from `template` (the software TPM and
 * the EK-from-certificate path need this). The key's size or curve must match the template; an RSA
 * exponent of 65537 keeps the template's exponent (0 or 65537), any other exponent is written as is.
 */
export function tpmtPublicFromKey(key: KeyObject, template: TpmtPublicTemplate): TpmtPublic {
  const jwk = key.export({ format: 'jwk' });
  let fields: TpmtPublicFields;
  if (template.type === TPM_ALG_RSA) {
    if (jwk.kty !== 'RSA' || jwk.n === undefined || jwk.e === undefined) {
      throw new TpmKeyError('template is RSA but the key is not');
    }
    const n = Buffer.from(jwk.n, 'base64url');
    if (n.length * 8 !== template.parameters.keyBits) {
      throw new TpmKeyError(`key is ${n.length * 8}-bit but the template says ${template.parameters.keyBits}`);
    }
    const e = Number.parseInt(Buffer.from(jwk.e, 'base64url').toString('hex'), 16);
    const exponent = e === 65537 ? template.parameters.exponent : e;
    fields = { ...template, parameters: { ...template.parameters, exponent }, unique: { n: new Uint8Array(n) } };
  } else {
    const curve = curveInfo(template.parameters.curveId);
    if (jwk.kty !== 'EC' || jwk.x === undefined || jwk.y === undefined || curve === undefined
      || curveInfoByJwkName(jwk.crv ?? '') !== curve) {
      throw new TpmKeyError('the key is not an ECC key on the template curve');
    }
    const x = fixedWidth(Buffer.from(jwk.x, 'base64url'), curve.size, 'x');
    const y = fixedWidth(Buffer.from(jwk.y, 'base64url'), curve.size, 'y');
    fields = { ...template, unique: { x, y } };
  }
  return { ...fields, raw: marshalTpmtPublic(fields) };
}

function importJwk(jwk: Record<string, string>): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (error) {
    throw new TpmKeyError(`not a valid public key (${(error as Error).message})`, { cause: error });
  }
}

/** Left-pads (or strips leading zeros from) a big-endian integer to exactly `size` bytes. */
function fixedWidth(value: Uint8Array, size: number, what: string): Uint8Array {
  let start = 0;
  while (value.length - start > size && value[start] === 0) {
    start += 1;
  }
  const digits = value.subarray(start);
  if (digits.length > size) {
    throw new TpmKeyError(`ECC coordinate ${what} is ${digits.length} bytes, the curve needs ${size}`);
  }
  const out = new Uint8Array(size);
  out.set(digits, size - digits.length);
  return out;
}

function uintBytes(value: number): Uint8Array {
  const hex = value.toString(16);
  return new Uint8Array(Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex'));
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}
