import { IronlimeError } from '../../interfaces/errors.js';
import { TPM_ALG_ECC } from './constants.js';
import { parseTpm2bPublic } from './tpmt-public.js';
import { verifyCertify, type CertifyCheck } from './verify-certify.js';
import { tpmKeyWeakness } from './weak-tpm-key.js';

/** The session proof an agent sends (keylime-protocol §10.2): TPM2_Certify of its AK by its AK. */
export interface ProofOfPossessionInput {
  /** TPM2B_PUBLIC of the AK the registrar and the enrolment hold (`ak_tpm`). */
  readonly akTpm: Uint8Array;
  /** The raw challenge bytes the verifier handed out (16 random bytes). */
  readonly challenge: Uint8Array;
  /** TPMS_ATTEST as signed. */
  readonly message: Uint8Array;
  /** TPMT_SIGNATURE over `message`. */
  readonly signature: Uint8Array;
  /** Default `sha256` (Keylime's). */
  readonly hashAlg?: string;
  /** Default: the AK's family's scheme, `rsassa` for an RSA AK (Keylime's only one), `ecdsa` for an ECC AK. */
  readonly signAlg?: string;
}

export type ProofOfPossessionVerdict =
  | { readonly valid: true }
  | { readonly valid: false; readonly failedCheck: CertifyCheck | 'malformed' | 'weak-key'; readonly reason: string };

/**
 * Checks a push agent's proof of possession (Keylime `Tpm.verify_tpm_object` over the session
 * challenge, spec §5.5 and §10.2): the AK signed a TPMS_ATTEST of type certify whose extraData is
 * the challenge and whose certified name is the AK's own name, with the pinned hash and scheme. An
 * AK whose TPM signs this holds the private key the registrar bound to the EK — unless the AK is one
 * whose private key can be computed from its public key (`tpmKeyWeakness`: short RSA, ROCA), which
 * proves no TPM and is refused whatever it signed (its attestations would fail anyway). Malformed
 * bytes are a refusal, never a throw: the input is untrusted.
 */
export function verifyProofOfPossession(input: ProofOfPossessionInput): ProofOfPossessionVerdict {
  try {
    const ak = parseTpm2bPublic(input.akTpm);
    const weakness = tpmKeyWeakness(ak);
    if (weakness !== null) return { valid: false, failedCheck: 'weak-key', reason: `the AK ${weakness}` };
    const verdict = verifyCertify({
      signerPublic: ak,
      attest: input.message,
      signature: input.signature,
      qualifyingData: input.challenge,
      certified: ak,
      hashAlg: input.hashAlg ?? 'sha256',
      // Keylime pins rsassa, so it refuses every ECC AK; a restricted ECC signing key can only sign
      // ECDSA, and the signature is still checked against the enrolled key (docs/push.md).
      signAlg: input.signAlg ?? (ak.type === TPM_ALG_ECC ? 'ecdsa' : 'rsassa'),
    });
    return verdict.valid ? { valid: true } : { valid: false, failedCheck: verdict.failedCheck, reason: verdict.reason };
  } catch (error) {
    if (error instanceof IronlimeError) {
      return { valid: false, failedCheck: 'malformed', reason: error.message };
    }
    throw error;
  }
}
