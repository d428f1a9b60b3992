import type { BigEndianReader } from '../../bytes/byte-reader.js';
import type { BigEndianWriter } from '../../bytes/byte-writer.js';
import {
  TPM_ALG_ECDAA,
  TPM_ALG_ECDH,
  TPM_ALG_ECDSA,
  TPM_ALG_ECMQV,
  TPM_ALG_ECSCHNORR,
  TPM_ALG_HMAC,
  TPM_ALG_KDF1_SP800_108,
  TPM_ALG_KDF1_SP800_56A,
  TPM_ALG_KDF2,
  TPM_ALG_MGF1,
  TPM_ALG_NULL,
  TPM_ALG_OAEP,
  TPM_ALG_RSAES,
  TPM_ALG_RSAPSS,
  TPM_ALG_RSASSA,
  TPM_ALG_SM2,
  TPM_ALG_XOR,
  algName,
} from '../constants.js';
import { TpmKeyError } from '../tpm-errors.js';

/**
 * The algorithm-parameter pieces of TPMT_PUBLIC (TPM 2.0 Part 2 §11.1.7 TPMT_SYM_DEF_OBJECT,
 * §11.2.3–11.2.5 scheme unions, §12.2.3 TPMU_PUBLIC_PARMS). A scheme is a selector followed by
 * details whose shape depends on the selector; selectors we do not know make the structure's length
 * unknowable, so they are parse errors.
 */

/** TPMT_SYM_DEF_OBJECT: algorithm, then keyBits and mode unless the algorithm is TPM_ALG_NULL (Table 141). */
export interface TpmtSymDefObject {
  readonly algorithm: number;
  /** Absent when `algorithm` is TPM_ALG_NULL. */
  readonly keyBits?: number;
  /** Absent when `algorithm` is TPM_ALG_NULL. */
  readonly mode?: number;
}

/**
 * A TPMT_*_SCHEME: `scheme` then, unless NULL (or RSAES), TPMS_SCHEME_HASH `hashAlg`; ECDAA adds a
 * u16 `count` (TPMS_SCHEME_ECDAA, Table 158) and XOR adds a u16 `kdf` (TPMS_SCHEME_XOR, Table 155).
 */
export interface TpmtScheme {
  readonly scheme: number;
  readonly hashAlg?: number;
  readonly count?: number;
  readonly kdf?: number;
}

/** TPMT_SYM_DEF_OBJECT (Part 2 Table 141). */
export function unmarshalSymDefObject(r: BigEndianReader): TpmtSymDefObject {
  return r.struct('symmetric', () => {
    const algorithm = r.u16();
    if (algorithm === TPM_ALG_NULL) {
      return { algorithm };
    }
    return { algorithm, keyBits: r.u16(), mode: r.u16() };
  });
}

export function marshalSymDefObject(w: BigEndianWriter, sym: TpmtSymDefObject): void {
  w.u16(sym.algorithm);
  if (sym.algorithm !== TPM_ALG_NULL) {
    w.u16(sym.keyBits ?? 0).u16(sym.mode ?? 0);
  }
}

export type SchemeFamily = 'rsa' | 'ecc' | 'keyedhash' | 'kdf';

/** Selectors allowed in each scheme union, and whether they carry a hashAlg (Part 2 Tables 155–166). */
const SCHEMES: Record<SchemeFamily, ReadonlyMap<number, 'empty' | 'hash' | 'ecdaa' | 'xor'>> = {
  // TPMT_RSA_SCHEME (Table 166): signing and encryption schemes; RSAES has no details.
  rsa: new Map([
    [TPM_ALG_NULL, 'empty'],
    [TPM_ALG_RSASSA, 'hash'],
    [TPM_ALG_RSAPSS, 'hash'],
    [TPM_ALG_RSAES, 'empty'],
    [TPM_ALG_OAEP, 'hash'],
  ]),
  // TPMT_ECC_SCHEME (Table 173).
  ecc: new Map([
    [TPM_ALG_NULL, 'empty'],
    [TPM_ALG_ECDSA, 'hash'],
    [TPM_ALG_ECDAA, 'ecdaa'],
    [TPM_ALG_SM2, 'hash'],
    [TPM_ALG_ECSCHNORR, 'hash'],
    [TPM_ALG_ECDH, 'hash'],
    [TPM_ALG_ECMQV, 'hash'],
  ]),
  // TPMT_KEYEDHASH_SCHEME (Table 157).
  keyedhash: new Map([
    [TPM_ALG_NULL, 'empty'],
    [TPM_ALG_HMAC, 'hash'],
    [TPM_ALG_XOR, 'xor'],
  ]),
  // TPMT_KDF_SCHEME (Table 161).
  kdf: new Map([
    [TPM_ALG_NULL, 'empty'],
    [TPM_ALG_MGF1, 'hash'],
    [TPM_ALG_KDF1_SP800_56A, 'hash'],
    [TPM_ALG_KDF2, 'hash'],
    [TPM_ALG_KDF1_SP800_108, 'hash'],
  ]),
};

/** One scheme of `family`, read under the structure name `name`. */
export function unmarshalScheme(r: BigEndianReader, family: SchemeFamily, name: string): TpmtScheme {
  return r.struct(name, () => {
    const scheme = r.u16();
    const shape = SCHEMES[family].get(scheme);
    switch (shape) {
      case 'empty':
        return { scheme };
      case 'hash':
        return { scheme, hashAlg: r.u16() };
      case 'ecdaa':
        return { scheme, hashAlg: r.u16(), count: r.u16() };
      case 'xor':
        return { scheme, hashAlg: r.u16(), kdf: r.u16() };
      case undefined:
        throw r.error(`scheme ${algName(scheme)} is not allowed in a ${family} scheme`);
    }
  });
}

/** Writes `scheme` with exactly the details its selector calls for (missing details are written as 0). */
export function marshalScheme(w: BigEndianWriter, family: SchemeFamily, scheme: TpmtScheme): void {
  const shape = SCHEMES[family].get(scheme.scheme);
  if (shape === undefined) {
    throw new TpmKeyError(`scheme ${algName(scheme.scheme)} is not allowed in a ${family} scheme`);
  }
  w.u16(scheme.scheme);
  if (shape !== 'empty') {
    w.u16(scheme.hashAlg ?? 0);
  }
  if (shape === 'ecdaa') {
    w.u16(scheme.count ?? 0);
  }
  if (shape === 'xor') {
    w.u16(scheme.kdf ?? 0);
  }
}
