import { BigEndianReader } from '../bytes/byte-reader.js';
import { BigEndianWriter } from '../bytes/byte-writer.js';
import { TpmParseError } from '../bytes/parse-errors.js';
import { TPM_ALG_ECC, TPM_ALG_KEYEDHASH, TPM_ALG_RSA, TPM_ALG_SYMCIPHER, algName, TPMU_HA_SIZE } from './constants.js';
import {
  marshalScheme,
  marshalSymDefObject,
  unmarshalScheme,
  unmarshalSymDefObject,
  type TpmtScheme,
  type TpmtSymDefObject,
} from './internal/tpmt-public-parms.js';

/** Largest RSA modulus we accept in a TPM2B_PUBLIC_KEY_RSA (4096-bit keys; Part 2 §11.2.4.5). */
const MAX_RSA_KEY_BYTES = 512;
/** Largest TPM2B_ECC_PARAMETER we accept (BN P638 is 80 bytes; Part 2 §11.2.5.1). */
const MAX_ECC_KEY_BYTES = 128;

interface PublicAreaCommon {
  /** TPMI_ALG_HASH used for the object's name. */
  readonly nameAlg: number;
  /** TPMA_OBJECT bits. */
  readonly objectAttributes: number;
  readonly authPolicy: Uint8Array;
}

/** TPMT_PUBLIC of an RSA key: TPMS_RSA_PARMS (Part 2 Table 197) and TPM2B_PUBLIC_KEY_RSA. */
export interface RsaPublicArea extends PublicAreaCommon {
  readonly type: typeof TPM_ALG_RSA;
  readonly parameters: {
    readonly symmetric: TpmtSymDefObject;
    readonly scheme: TpmtScheme;
    readonly keyBits: number;
    /** 0 means the default exponent 65537 (Part 2 §12.2.3.5). */
    readonly exponent: number;
  };
  readonly unique: { readonly n: Uint8Array };
}

/** TPMT_PUBLIC of an ECC key: TPMS_ECC_PARMS (Part 2 Table 198) and TPMS_ECC_POINT. */
export interface EccPublicArea extends PublicAreaCommon {
  readonly type: typeof TPM_ALG_ECC;
  readonly parameters: {
    readonly symmetric: TpmtSymDefObject;
    readonly scheme: TpmtScheme;
    readonly curveId: number;
    readonly kdf: TpmtScheme;
  };
  readonly unique: { readonly x: Uint8Array; readonly y: Uint8Array };
}

/** TPMT_PUBLIC of a keyed-hash object (HMAC key or sealed data; Part 2 Table 195). */
export interface KeyedHashPublicArea extends PublicAreaCommon {
  readonly type: typeof TPM_ALG_KEYEDHASH;
  readonly parameters: { readonly scheme: TpmtScheme };
  readonly unique: { readonly digest: Uint8Array };
}

/** TPMT_PUBLIC of a symmetric key (Part 2 Table 196). */
export interface SymCipherPublicArea extends PublicAreaCommon {
  readonly type: typeof TPM_ALG_SYMCIPHER;
  readonly parameters: { readonly symmetric: TpmtSymDefObject };
  readonly unique: { readonly digest: Uint8Array };
}

/** The fields of a TPMT_PUBLIC, without the bytes they came from. */
export type TpmtPublicFields = RsaPublicArea | EccPublicArea | KeyedHashPublicArea | SymCipherPublicArea;

/** A parsed TPMT_PUBLIC with the exact bytes it was read from (`raw`): the object name hashes those. */
export type TpmtPublic = TpmtPublicFields & { readonly raw: Uint8Array };

/**
 * Unmarshals a TPMT_PUBLIC (Part 2 §12.2.4, Table 200):
 * | type TPMI_ALG_PUBLIC u16 | nameAlg u16 | objectAttributes u32 | authPolicy TPM2B_DIGEST |
 * | parameters TPMU_PUBLIC_PARMS (by type) | unique TPMU_PUBLIC_ID (by type) |
 */
export function unmarshalTpmtPublic(r: BigEndianReader): TpmtPublic {
  return r.struct('TPMT_PUBLIC', () => {
    const start = r.offset;
    const type = r.u16();
    const common = {
      nameAlg: r.u16(),
      objectAttributes: r.u32(),
      authPolicy: r.struct('authPolicy', () => r.tpm2b(TPMU_HA_SIZE)),
    };
    const fields = unmarshalTyped(r, type, common);
    return { ...fields, raw: r.bytes.slice(start, r.offset) };
  });
}

function unmarshalTyped(r: BigEndianReader, type: number, common: PublicAreaCommon): TpmtPublicFields {
  switch (type) {
    case TPM_ALG_RSA: {
      const parameters = r.struct('parameters', () => ({
        symmetric: unmarshalSymDefObject(r),
        scheme: unmarshalScheme(r, 'rsa', 'scheme'),
        keyBits: r.u16(),
        exponent: r.u32(),
      }));
      const n = r.struct('unique', () => r.tpm2b(MAX_RSA_KEY_BYTES));
      return { type, ...common, parameters, unique: { n } };
    }
    case TPM_ALG_ECC: {
      const parameters = r.struct('parameters', () => ({
        symmetric: unmarshalSymDefObject(r),
        scheme: unmarshalScheme(r, 'ecc', 'scheme'),
        curveId: r.u16(),
        kdf: unmarshalScheme(r, 'kdf', 'kdf'),
      }));
      const unique = r.struct('unique', () => ({ x: r.tpm2b(MAX_ECC_KEY_BYTES), y: r.tpm2b(MAX_ECC_KEY_BYTES) }));
      return { type, ...common, parameters, unique };
    }
    case TPM_ALG_KEYEDHASH: {
      const parameters = r.struct('parameters', () => ({ scheme: unmarshalScheme(r, 'keyedhash', 'scheme') }));
      return { type, ...common, parameters, unique: { digest: r.struct('unique', () => r.tpm2b(TPMU_HA_SIZE)) } };
    }
    case TPM_ALG_SYMCIPHER: {
      const parameters = r.struct('parameters', () => ({ symmetric: unmarshalSymDefObject(r) }));
      return { type, ...common, parameters, unique: { digest: r.struct('unique', () => r.tpm2b(TPMU_HA_SIZE)) } };
    }
    default:
      throw r.error(`unknown object type ${algName(type)}`);
  }
}

/** Parses a TPMT_PUBLIC that fills `bytes` exactly. Throws `TpmParseError`. */
export function parseTpmtPublic(bytes: Uint8Array): TpmtPublic {
  const r = new BigEndianReader(bytes, TpmParseError);
  const pub = unmarshalTpmtPublic(r);
  r.finish();
  return pub;
}

/** Unmarshals a TPM2B_PUBLIC: u16 size, then a TPMT_PUBLIC of exactly that size (Part 2 Table 201). */
export function unmarshalTpm2bPublic(r: BigEndianReader): TpmtPublic {
  return r.struct('TPM2B_PUBLIC', () => {
    const size = r.u16();
    if (size > r.remaining) {
      throw r.error(`size ${size} exceeds the ${r.remaining} byte(s) left`);
    }
    const end = r.offset + size;
    const pub = unmarshalTpmtPublic(r);
    if (r.offset !== end) {
      throw r.error(`TPMT_PUBLIC ends ${end - r.offset} byte(s) before its TPM2B size`);
    }
    return pub;
  });
}

/** Parses a TPM2B_PUBLIC that fills `bytes` exactly; `raw` of the result is the inner TPMT_PUBLIC. */
export function parseTpm2bPublic(bytes: Uint8Array): TpmtPublic {
  const r = new BigEndianReader(bytes, TpmParseError);
  const pub = unmarshalTpm2bPublic(r);
  r.finish();
  return pub;
}

/**
 * Parses either a TPM2B_PUBLIC or a bare TPMT_PUBLIC: the bytes are a TPM2B when their first u16
 * equals the length of the rest (a TPMT_PUBLIC starts with its type, 0x0001/0x0023/…, which can
 * never equal the length of a usable public area).
 */
export function parsePublicArea(bytes: Uint8Array): TpmtPublic {
  const isTpm2b = bytes.length >= 2 && ((bytes[0] ?? 0) << 8 | (bytes[1] ?? 0)) === bytes.length - 2;
  return isTpm2b ? parseTpm2bPublic(bytes) : parseTpmtPublic(bytes);
}

/** Writes a TPMT_PUBLIC from its fields (`raw`, if present, is ignored). */
export function marshalTpmtPublicTo(w: BigEndianWriter, pub: TpmtPublicFields): void {
  w.u16(pub.type).u16(pub.nameAlg).u32(pub.objectAttributes).tpm2b(pub.authPolicy);
  switch (pub.type) {
    case TPM_ALG_RSA:
      marshalSymDefObject(w, pub.parameters.symmetric);
      marshalScheme(w, 'rsa', pub.parameters.scheme);
      w.u16(pub.parameters.keyBits).u32(pub.parameters.exponent).tpm2b(pub.unique.n);
      return;
    case TPM_ALG_ECC:
      marshalSymDefObject(w, pub.parameters.symmetric);
      marshalScheme(w, 'ecc', pub.parameters.scheme);
      w.u16(pub.parameters.curveId);
      marshalScheme(w, 'kdf', pub.parameters.kdf);
      w.tpm2b(pub.unique.x).tpm2b(pub.unique.y);
      return;
    case TPM_ALG_KEYEDHASH:
      marshalScheme(w, 'keyedhash', pub.parameters.scheme);
      w.tpm2b(pub.unique.digest);
      return;
    case TPM_ALG_SYMCIPHER:
      marshalSymDefObject(w, pub.parameters.symmetric);
      w.tpm2b(pub.unique.digest);
      return;
  }
}

/** Marshals a TPMT_PUBLIC. */
export function marshalTpmtPublic(pub: TpmtPublicFields): Uint8Array {
  const w = new BigEndianWriter();
  marshalTpmtPublicTo(w, pub);
  return w.finish();
}

/** Marshals a TPM2B_PUBLIC (u16 size ‖ TPMT_PUBLIC). */
export function marshalTpm2bPublic(pub: TpmtPublicFields): Uint8Array {
  return new BigEndianWriter().sized16((w) => marshalTpmtPublicTo(w, pub)).finish();
}
