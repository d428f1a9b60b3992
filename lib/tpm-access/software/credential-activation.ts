import type { KeyObject } from 'node:crypto';
import { TpmParseError } from '../../bytes/parse-errors.js';
import { activateCredential } from './activate-credential.js';
import { TPM_ALG_RSA } from '../../tpm/constants.js';
import { CredentialActivationError } from '../../tpm/tpm-errors.js';
import type { TpmtPublic } from '../../tpm/tpmt-public.js';
import { TpmAccessError } from '../tpm-access-error.js';

/** TPM_RC_INTEGRITY (Part 2 §6.6.3): the outer HMAC does not match, e.g. the blob is for another AK. */
export const TPM_RC_INTEGRITY = 0x09f;
/** TPM_RC_VALUE: the encrypted seed does not decrypt under the EK. */
export const TPM_RC_VALUE = 0x084;
/** TPM_RC_SIZE: the decrypted credential's size field does not fit. */
export const TPM_RC_SIZE = 0x095;

/** The EK as the software TPM holds it. */
export interface EkKeyPair {
  publicArea: TpmtPublic;
  privateKey: KeyObject;
}

/**
 * TPM2_ActivateCredential (Part 3 §12.5) as the software TPM answers it: lib/tpm's
 * `activateCredential` runs the algorithm (seed from the EK, outer HMAC over encIdentity ‖ AK name in
 * constant time, AES-CFB decryption), and its uniform refusal becomes the TpmAccessError a TPM
 * reports for the step that failed: TPM_RC_VALUE (seed), TPM_RC_INTEGRITY (HMAC) or TPM_RC_SIZE
 * (decrypted credential). A malformed blob, including a malformed ECC point in it, throws TpmParseError.
 */
export function activateCredentialInSoftware(ek: EkKeyPair, akName: Uint8Array, blob: Uint8Array): Uint8Array {
  try {
    return activateCredential({ ekPrivateKey: ek.privateKey, ekPublic: ek.publicArea, akName, blob });
  } catch (error) {
    throw error instanceof CredentialActivationError ? asTpmResponse(error, ek.publicArea) : error;
  }
}

function asTpmResponse(error: CredentialActivationError, ek: TpmtPublic): Error {
  switch (error.step) {
    case 'secret':
      if (error.cause instanceof TpmParseError) {
        return error.cause;
      }
      return new TpmAccessError(
        ek.type === TPM_ALG_RSA
          ? 'credential activation failed: the secret does not decrypt under the EK'
          : 'credential activation failed: the ephemeral point is not on the EK curve',
        { cause: error.cause, responseCode: TPM_RC_VALUE },
      );
    case 'integrity':
      return new TpmAccessError('credential activation failed: integrity check of the credential failed (made for another AK or EK?)', {
        responseCode: TPM_RC_INTEGRITY,
      });
    case 'credential':
      return new TpmAccessError('credential activation failed: the decrypted credential has a bad size', { responseCode: TPM_RC_SIZE });
  }
}
