/**
 * TPM 2.0 constants with their spec names (TCG Algorithm Registry rev 1.34 Table 3; TPM 2.0 Library
 * Part 2 rev 1.59 §6.9 TPM_ST, §6.2 TPM_GENERATED, §8.3 TPMA_OBJECT, §6.4 TPM_ECC_CURVE) and the
 * mappings between TPM algorithm ids, Keylime's algorithm names and node:crypto's names.
 */

// TPM_ALG_ID (Algorithm Registry Table 3).
export const TPM_ALG_RSA = 0x0001;
export const TPM_ALG_SHA1 = 0x0004;
export const TPM_ALG_HMAC = 0x0005;
export const TPM_ALG_AES = 0x0006;
export const TPM_ALG_MGF1 = 0x0007;
export const TPM_ALG_KEYEDHASH = 0x0008;
export const TPM_ALG_XOR = 0x000a;
export const TPM_ALG_SHA256 = 0x000b;
export const TPM_ALG_SHA384 = 0x000c;
export const TPM_ALG_SHA512 = 0x000d;
export const TPM_ALG_NULL = 0x0010;
export const TPM_ALG_SM3_256 = 0x0012;
export const TPM_ALG_SM4 = 0x0013;
export const TPM_ALG_RSASSA = 0x0014;
export const TPM_ALG_RSAES = 0x0015;
export const TPM_ALG_RSAPSS = 0x0016;
export const TPM_ALG_OAEP = 0x0017;
export const TPM_ALG_ECDSA = 0x0018;
export const TPM_ALG_ECDH = 0x0019;
export const TPM_ALG_ECDAA = 0x001a;
export const TPM_ALG_SM2 = 0x001b;
export const TPM_ALG_ECSCHNORR = 0x001c;
export const TPM_ALG_ECMQV = 0x001d;
export const TPM_ALG_KDF1_SP800_56A = 0x0020;
export const TPM_ALG_KDF2 = 0x0021;
export const TPM_ALG_KDF1_SP800_108 = 0x0022;
export const TPM_ALG_ECC = 0x0023;
export const TPM_ALG_SYMCIPHER = 0x0025;
export const TPM_ALG_CAMELLIA = 0x0026;
export const TPM_ALG_SHA3_256 = 0x0027;
export const TPM_ALG_SHA3_384 = 0x0028;
export const TPM_ALG_SHA3_512 = 0x0029;
export const TPM_ALG_CTR = 0x0040;
export const TPM_ALG_OFB = 0x0041;
export const TPM_ALG_CBC = 0x0042;
export const TPM_ALG_CFB = 0x0043;
export const TPM_ALG_ECB = 0x0044;

// TPM_ST attestation structure tags (Part 2 §6.9, Table 19).
export const TPM_ST_ATTEST_NV = 0x8014;
export const TPM_ST_ATTEST_COMMAND_AUDIT = 0x8015;
export const TPM_ST_ATTEST_SESSION_AUDIT = 0x8016;
export const TPM_ST_ATTEST_CERTIFY = 0x8017;
export const TPM_ST_ATTEST_QUOTE = 0x8018;
export const TPM_ST_ATTEST_TIME = 0x8019;
export const TPM_ST_ATTEST_CREATION = 0x801a;
export const TPM_ST_ATTEST_NV_DIGEST = 0x801c;

/**
 * sizeof(TPMU_HA) on a TPM that implements SHA-512: the largest digest, so the largest TPM2B_DIGEST
 * buffer (Part 2 §10.3.1, Table 79; §10.4.2).
 */
export const TPMU_HA_SIZE = 64;

/** TPM_GENERATED_VALUE: "\xffTCG", the magic of every TPMS_ATTEST the TPM signs (Part 2 §6.2, Table 7). */
export const TPM_GENERATED_VALUE = 0xff544347;

// TPMA_OBJECT bits (Part 2 §8.3.2, Table 31).
export const TPMA_OBJECT_FIXEDTPM = 0x00000002;
export const TPMA_OBJECT_STCLEAR = 0x00000004;
export const TPMA_OBJECT_FIXEDPARENT = 0x00000010;
export const TPMA_OBJECT_SENSITIVEDATAORIGIN = 0x00000020;
export const TPMA_OBJECT_USERWITHAUTH = 0x00000040;
export const TPMA_OBJECT_ADMINWITHPOLICY = 0x00000080;
export const TPMA_OBJECT_NODA = 0x00000400;
export const TPMA_OBJECT_ENCRYPTEDDUPLICATION = 0x00000800;
export const TPMA_OBJECT_RESTRICTED = 0x00010000;
export const TPMA_OBJECT_DECRYPT = 0x00020000;
export const TPMA_OBJECT_SIGN_ENCRYPT = 0x00040000;
export const TPMA_OBJECT_X509SIGN = 0x00080000;

/** TPMA_OBJECT bit names, for messages (Part 2 Table 31 spelling). */
export const TPMA_OBJECT_NAMES: ReadonlyArray<readonly [number, string]> = [
  [TPMA_OBJECT_FIXEDTPM, 'fixedTPM'],
  [TPMA_OBJECT_STCLEAR, 'stClear'],
  [TPMA_OBJECT_FIXEDPARENT, 'fixedParent'],
  [TPMA_OBJECT_SENSITIVEDATAORIGIN, 'sensitiveDataOrigin'],
  [TPMA_OBJECT_USERWITHAUTH, 'userWithAuth'],
  [TPMA_OBJECT_ADMINWITHPOLICY, 'adminWithPolicy'],
  [TPMA_OBJECT_NODA, 'noDA'],
  [TPMA_OBJECT_ENCRYPTEDDUPLICATION, 'encryptedDuplication'],
  [TPMA_OBJECT_RESTRICTED, 'restricted'],
  [TPMA_OBJECT_DECRYPT, 'decrypt'],
  [TPMA_OBJECT_SIGN_ENCRYPT, 'sign'],
  [TPMA_OBJECT_X509SIGN, 'x509sign'],
];

// TPM_ECC_CURVE (Part 2 §6.4, Table 10).
export const TPM_ECC_NIST_P192 = 0x0001;
export const TPM_ECC_NIST_P224 = 0x0002;
export const TPM_ECC_NIST_P256 = 0x0003;
export const TPM_ECC_NIST_P384 = 0x0004;
export const TPM_ECC_NIST_P521 = 0x0005;
export const TPM_ECC_BN_P256 = 0x0010;
export const TPM_ECC_BN_P638 = 0x0011;
export const TPM_ECC_SM2_P256 = 0x0020;

/**
 * A hash algorithm the TPM can name, with its Keylime name and node:crypto name. `HASH_ALGORITHMS` is
 * the one table of these facts: the event-log banks (`lib/mb/internal/hash-algorithms.ts`), the quote digests
 * (`lib/attestation/internal/digest.ts`) and IMA (`lib/ima/hash-algorithms.ts`, which adds only the kernel's ids)
 * all read it.
 */
export interface TpmHashInfo {
  readonly algId: number;
  /** Keylime / tpm2-tools spelling (`sha256`, `sm3_256`). */
  readonly name: string;
  /** node:crypto spelling. */
  readonly nodeName: string;
  readonly digestSize: number;
}

/** Every hash TPM_ALG_ID we know, with its digest size (Algorithm Registry Table 3). */
export const HASH_ALGORITHMS: readonly TpmHashInfo[] = Object.freeze([
  { algId: TPM_ALG_SHA1, name: 'sha1', nodeName: 'sha1', digestSize: 20 },
  { algId: TPM_ALG_SHA256, name: 'sha256', nodeName: 'sha256', digestSize: 32 },
  { algId: TPM_ALG_SHA384, name: 'sha384', nodeName: 'sha384', digestSize: 48 },
  { algId: TPM_ALG_SHA512, name: 'sha512', nodeName: 'sha512', digestSize: 64 },
  { algId: TPM_ALG_SM3_256, name: 'sm3_256', nodeName: 'sm3', digestSize: 32 },
  { algId: TPM_ALG_SHA3_256, name: 'sha3_256', nodeName: 'sha3-256', digestSize: 32 },
  { algId: TPM_ALG_SHA3_384, name: 'sha3_384', nodeName: 'sha3-384', digestSize: 48 },
  { algId: TPM_ALG_SHA3_512, name: 'sha3_512', nodeName: 'sha3-512', digestSize: 64 },
]);
const HASH_BY_ID = new Map(HASH_ALGORITHMS.map((h) => [h.algId, h]));
const HASH_BY_NAME = new Map(HASH_ALGORITHMS.map((h) => [h.name, h]));

/** The hash with this TPM_ALG_ID, or undefined if it is not a hash we know. */
export function hashInfo(algId: number): TpmHashInfo | undefined {
  return HASH_BY_ID.get(algId);
}

/** The hash with this Keylime name (`sha256`; `SHA-256` and `sm3` are accepted too), or undefined. */
export function hashInfoByName(name: string): TpmHashInfo | undefined {
  const exact = HASH_BY_NAME.get(name);
  if (exact !== undefined) {
    return exact;
  }
  const key = name.toLowerCase().replace('-', '');
  return HASH_BY_NAME.get(key === 'sm3' ? 'sm3_256' : key);
}

/** Accepts a TPM_ALG_ID or a Keylime hash name and returns the hash, or undefined if unknown. */
export function resolveHash(alg: number | string): TpmHashInfo | undefined {
  return typeof alg === 'number' ? hashInfo(alg) : hashInfoByName(alg);
}

/** Digest size of a hash TPM_ALG_ID, or undefined for an id that is not a known hash. */
export function digestSize(algId: number): number | undefined {
  return HASH_BY_ID.get(algId)?.digestSize;
}

const ALG_NAMES = new Map<number, string>([
  [TPM_ALG_RSA, 'rsa'],
  [TPM_ALG_HMAC, 'hmac'],
  [TPM_ALG_AES, 'aes'],
  [TPM_ALG_MGF1, 'mgf1'],
  [TPM_ALG_KEYEDHASH, 'keyedhash'],
  [TPM_ALG_XOR, 'xor'],
  [TPM_ALG_NULL, 'null'],
  [TPM_ALG_SM4, 'sm4'],
  [TPM_ALG_RSASSA, 'rsassa'],
  [TPM_ALG_RSAES, 'rsaes'],
  [TPM_ALG_RSAPSS, 'rsapss'],
  [TPM_ALG_OAEP, 'oaep'],
  [TPM_ALG_ECDSA, 'ecdsa'],
  [TPM_ALG_ECDH, 'ecdh'],
  [TPM_ALG_ECDAA, 'ecdaa'],
  [TPM_ALG_SM2, 'sm2'],
  [TPM_ALG_ECSCHNORR, 'ecschnorr'],
  [TPM_ALG_ECMQV, 'ecmqv'],
  [TPM_ALG_KDF1_SP800_56A, 'kdf1_sp800_56a'],
  [TPM_ALG_KDF2, 'kdf2'],
  [TPM_ALG_KDF1_SP800_108, 'kdf1_sp800_108'],
  [TPM_ALG_ECC, 'ecc'],
  [TPM_ALG_SYMCIPHER, 'symcipher'],
  [TPM_ALG_CAMELLIA, 'camellia'],
  [TPM_ALG_CTR, 'ctr'],
  [TPM_ALG_OFB, 'ofb'],
  [TPM_ALG_CBC, 'cbc'],
  [TPM_ALG_CFB, 'cfb'],
  [TPM_ALG_ECB, 'ecb'],
  ...HASH_ALGORITHMS.map((h) => [h.algId, h.name] as const),
]);
const ALG_IDS = new Map([...ALG_NAMES].map(([id, name]) => [name, id]));

/** Lower-case name of any TPM_ALG_ID (`rsassa`, `sha256`), or `0x….` for ids we do not name. */
export function algName(algId: number): string {
  return ALG_NAMES.get(algId) ?? `0x${algId.toString(16).padStart(4, '0')}`;
}

/** TPM_ALG_ID for a lower-case name (`ecdsa`, `sha384`), or undefined. */
export function algIdByName(name: string): number | undefined {
  return ALG_IDS.get(name.toLowerCase());
}

/** An ECC curve we can turn into a node:crypto key: its JWK name and coordinate size. */
export interface TpmCurveInfo {
  readonly curveId: number;
  readonly name: string;
  /** JWK `crv` (RFC 7518 §6.2.1.1). */
  readonly jwkName: 'P-256' | 'P-384' | 'P-521';
  /** node:crypto / OpenSSL curve name. */
  readonly nodeName: string;
  /** Bytes of one coordinate. */
  readonly size: number;
}

const CURVES: readonly TpmCurveInfo[] = [
  { curveId: TPM_ECC_NIST_P256, name: 'nist_p256', jwkName: 'P-256', nodeName: 'prime256v1', size: 32 },
  { curveId: TPM_ECC_NIST_P384, name: 'nist_p384', jwkName: 'P-384', nodeName: 'secp384r1', size: 48 },
  { curveId: TPM_ECC_NIST_P521, name: 'nist_p521', jwkName: 'P-521', nodeName: 'secp521r1', size: 66 },
];

/** The curve with this TPM_ECC_CURVE id, or undefined for curves node:crypto keys cannot use here. */
export function curveInfo(curveId: number): TpmCurveInfo | undefined {
  return CURVES.find((c) => c.curveId === curveId);
}

/** The curve with this JWK name (`P-256`), or undefined. */
export function curveInfoByJwkName(jwkName: string): TpmCurveInfo | undefined {
  return CURVES.find((c) => c.jwkName === jwkName);
}
