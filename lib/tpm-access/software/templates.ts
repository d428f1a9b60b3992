import { AK_REQUIRED_ATTRIBUTES } from '../../tpm/ak-attributes.js';
import {
  TPM_ALG_AES,
  TPM_ALG_CFB,
  TPM_ALG_ECC,
  TPM_ALG_ECDSA,
  TPM_ALG_NULL,
  TPM_ALG_RSA,
  TPM_ALG_RSASSA,
  TPM_ALG_SHA256,
  TPM_ECC_NIST_P256,
} from '../../tpm/constants.js';
import type { TpmtPublicTemplate } from '../../tpm/tpmt-public-key.js';

/**
 * Standard key templates, for building a TPMT_PUBLIC from a key (`tpmtPublicFromKey`): the software
 * TPM's EK and AKs, and an EK public area from an EK certificate's key.
 */

/** PolicyA (SHA-256): PolicySecret(TPM_RH_ENDORSEMENT), the EK authPolicy (TCG EK Credential Profile 2.0 §B.3.2). */
export const EK_POLICY_A_SHA256 = new Uint8Array(
  Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex'),
);

/**
 * EK attributes 0x000300B2: fixedTPM, fixedParent, sensitiveDataOrigin, adminWithPolicy, restricted,
 * decrypt (EK Credential Profile 2.0 §B.3.3, Templates L-1 and L-2; keylime-protocol §5.2).
 */
export const EK_ATTRIBUTES = 0x000300b2;

/**
 * AK attributes 0x00050072: fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth, restricted, sign
 * — exactly the bits every AK must have (`checkAkAttributes`).
 */
export const AK_ATTRIBUTES = AK_REQUIRED_ATTRIBUTES;

const AES_128_CFB = { algorithm: TPM_ALG_AES, keyBits: 128, mode: TPM_ALG_CFB } as const;

/** EK Template L-1: RSA 2048, SHA-256 name, AES-128-CFB, exponent 0 (= 65537), unique = 256 zero bytes. */
export const EK_TEMPLATE_RSA_2048: TpmtPublicTemplate = {
  type: TPM_ALG_RSA,
  nameAlg: TPM_ALG_SHA256,
  objectAttributes: EK_ATTRIBUTES,
  authPolicy: EK_POLICY_A_SHA256,
  parameters: { symmetric: AES_128_CFB, scheme: { scheme: TPM_ALG_NULL }, keyBits: 2048, exponent: 0 },
};

/** EK Template L-2: ECC NIST P-256, SHA-256 name, AES-128-CFB, NULL scheme and KDF. */
export const EK_TEMPLATE_ECC_P256: TpmtPublicTemplate = {
  type: TPM_ALG_ECC,
  nameAlg: TPM_ALG_SHA256,
  objectAttributes: EK_ATTRIBUTES,
  authPolicy: EK_POLICY_A_SHA256,
  parameters: { symmetric: AES_128_CFB, scheme: { scheme: TPM_ALG_NULL }, curveId: TPM_ECC_NIST_P256, kdf: { scheme: TPM_ALG_NULL } },
};

/** The RSA-2048 AK `tpm2_createak -G rsa -s rsassa -g <hash>` makes: restricted signing, RSASSA-<hash>. */
export function rsaAkTemplate(hashAlgId: number): TpmtPublicTemplate {
  return {
    type: TPM_ALG_RSA,
    nameAlg: TPM_ALG_SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: new Uint8Array(0),
    parameters: { symmetric: { algorithm: TPM_ALG_NULL }, scheme: { scheme: TPM_ALG_RSASSA, hashAlg: hashAlgId }, keyBits: 2048, exponent: 0 },
  };
}

/** The P-256 AK `tpm2_createak -G ecc256 -s ecdsa -g <hash>` makes: restricted signing, ECDSA-<hash>. */
export function eccAkTemplate(hashAlgId: number): TpmtPublicTemplate {
  return {
    type: TPM_ALG_ECC,
    nameAlg: TPM_ALG_SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: new Uint8Array(0),
    parameters: {
      symmetric: { algorithm: TPM_ALG_NULL },
      scheme: { scheme: TPM_ALG_ECDSA, hashAlg: hashAlgId },
      curveId: TPM_ECC_NIST_P256,
      kdf: { scheme: TPM_ALG_NULL },
    },
  };
}

/** An RSA-2048 AK signing with RSASSA-SHA256, as `tpm2_createak -G rsa -g sha256 -s rsassa` makes it. */
export const AK_TEMPLATE_RSA_2048 = rsaAkTemplate(TPM_ALG_SHA256);

/** A P-256 AK signing with ECDSA-SHA256, as `tpm2_createak -G ecc -g sha256 -s ecdsa` makes it. */
export const AK_TEMPLATE_ECC_P256 = eccAkTemplate(TPM_ALG_SHA256);
