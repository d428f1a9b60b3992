import {
  TPMA_OBJECT_DECRYPT,
  TPMA_OBJECT_FIXEDPARENT,
  TPMA_OBJECT_FIXEDTPM,
  TPMA_OBJECT_NAMES,
  TPMA_OBJECT_RESTRICTED,
  TPMA_OBJECT_SENSITIVEDATAORIGIN,
  TPMA_OBJECT_SIGN_ENCRYPT,
  TPMA_OBJECT_USERWITHAUTH,
  TPM_ALG_ECC,
  TPM_ALG_RSA,
  algName,
} from './constants.js';
import type { TpmtPublicFields } from './tpmt-public.js';

/**
 * TPMA_OBJECT bits every AK must have: 0x00050072, the value Keylime's removed legacy registrar
 * required exactly (`AK_EXPECTED_ATTRS`, keylime-protocol §1.3). fixedTPM + fixedParent +
 * sensitiveDataOrigin: the key was generated in this TPM and cannot leave it; restricted + sign: the
 * TPM refuses to sign data that starts with TPM_GENERATED_VALUE unless it produced it (Part 1 §25.2),
 * so a quote cannot be forged by signing chosen bytes; userWithAuth: usable with its auth value.
 */
export const AK_REQUIRED_ATTRIBUTES = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN
  | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;

/** Bits an AK must not have: a restricted key that also decrypts is a storage key, not an AK. */
export const AK_FORBIDDEN_ATTRIBUTES = TPMA_OBJECT_DECRYPT;

function names(bits: number): string[] {
  return TPMA_OBJECT_NAMES.filter(([bit]) => (bits & bit) !== 0).map(([, name]) => name);
}

/**
 * Checks that `pub` is a restricted signing key fit to be an AK: an RSA or ECC key with every bit of
 * `AK_REQUIRED_ATTRIBUTES` set and `decrypt` clear. Returns the problems found, each a sentence
 * naming the attribute bits; an empty list means the AK is acceptable. Other bits (noDA,
 * adminWithPolicy, stClear…) are allowed — Windows AKs set noDA. Stricter than Keylime today, whose
 * registrar checks no attributes. Does not check key size, scheme or who created the key (that is
 * what MakeCredential/ActivateCredential prove).
 */
export function checkAkAttributes(pub: TpmtPublicFields): string[] {
  const attrs = `0x${pub.objectAttributes.toString(16).padStart(8, '0')}`;
  const missing = names(AK_REQUIRED_ATTRIBUTES & ~pub.objectAttributes);
  const forbidden = names(AK_FORBIDDEN_ATTRIBUTES & pub.objectAttributes);
  const problems: string[] = [];
  if (pub.type !== TPM_ALG_RSA && pub.type !== TPM_ALG_ECC) {
    problems.push(`type ${algName(pub.type)} is not RSA or ECC`);
  }
  if (missing.length > 0) {
    problems.push(`attributes ${attrs} lack ${missing.join(', ')}`);
  }
  if (forbidden.length > 0) {
    problems.push(`attributes ${attrs} must not include ${forbidden.join(', ')}`);
  }
  return problems;
}
