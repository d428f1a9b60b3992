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
  TPMA_OBJECT_ADMINWITHPOLICY,
  TPMA_OBJECT_DECRYPT,
  TPMA_OBJECT_FIXEDPARENT,
  TPMA_OBJECT_FIXEDTPM,
  TPMA_OBJECT_RESTRICTED,
  TPMA_OBJECT_SENSITIVEDATAORIGIN,
  TPMA_OBJECT_SIGN_ENCRYPT,
  TPMA_OBJECT_USERWITHAUTH,
} from '../../tpm/constants.js';
import type { TpmtPublicTemplate } from '../../tpm/tpmt-public.js';

/**
 * PolicyA, the EK authPolicy of the low-range templates: PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256
 * (TCG EK Credential Profile 2.0 §B.3.2; Keylime spec §5.2).
 */
const POLICY_A_SHA256 = new Uint8Array(Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex'));

/** fixedTPM | fixedParent | sensitiveDataOrigin | adminWithPolicy | restricted | decrypt = 0x000300b2. */
const EK_ATTRIBUTES =
  TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY
  | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;

/** What `tpm2_createak` sets: fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | restricted | sign = 0x00050072. */
const AK_ATTRIBUTES =
  TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH
  | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;

const AES_128_CFB = { algorithm: TPM_ALG_AES, keyBits: 128, mode: TPM_ALG_CFB };
const NO_SYMMETRIC = { algorithm: TPM_ALG_NULL };
const NO_SCHEME = { scheme: TPM_ALG_NULL };

/** TCG EK Credential Profile template L-1 (RSA 2048, AES-128-CFB, SHA-256 name, PolicyA). */
export const EK_TEMPLATE_RSA_2048: TpmtPublicTemplate = {
  type: TPM_ALG_RSA,
  nameAlg: TPM_ALG_SHA256,
  objectAttributes: EK_ATTRIBUTES,
  authPolicy: POLICY_A_SHA256,
  parameters: { symmetric: AES_128_CFB, scheme: NO_SCHEME, keyBits: 2048, exponent: 0 },
};

/** TCG EK Credential Profile template L-2 (NIST P-256, AES-128-CFB, SHA-256 name, PolicyA). */
export const EK_TEMPLATE_ECC_P256: TpmtPublicTemplate = {
  type: TPM_ALG_ECC,
  nameAlg: TPM_ALG_SHA256,
  objectAttributes: EK_ATTRIBUTES,
  authPolicy: POLICY_A_SHA256,
  parameters: { symmetric: AES_128_CFB, scheme: NO_SCHEME, curveId: TPM_ECC_NIST_P256, kdf: NO_SCHEME },
};

/** The AK `tpm2_createak -G rsa -s rsassa -g <hash>` creates: RSA 2048 restricted signing, RSASSA-<hash>. */
export function rsaAkTemplate(hashAlgId: number): TpmtPublicTemplate {
  return {
    type: TPM_ALG_RSA,
    nameAlg: TPM_ALG_SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: new Uint8Array(0),
    parameters: { symmetric: NO_SYMMETRIC, scheme: { scheme: TPM_ALG_RSASSA, hashAlg: hashAlgId }, keyBits: 2048, exponent: 0 },
  };
}

/** The AK `tpm2_createak -G ecc256 -s ecdsa -g <hash>` creates: P-256 restricted signing, ECDSA-<hash>. */
export function eccAkTemplate(hashAlgId: number): TpmtPublicTemplate {
  return {
    type: TPM_ALG_ECC,
    nameAlg: TPM_ALG_SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: new Uint8Array(0),
    parameters: { symmetric: NO_SYMMETRIC, scheme: { scheme: TPM_ALG_ECDSA, hashAlg: hashAlgId }, curveId: TPM_ECC_NIST_P256, kdf: NO_SCHEME },
  };
}
