import type { KeyObject } from 'node:crypto';
import { TpmParseError } from '../../bytes/parse-errors.js';
import { verdictFor, type SignatureVerdict } from '../signature-verdict.js';
import { resolveSignScheme, signatureSchemeProblem, tpmSignatureVerifies } from '../tpm-signature-check.js';
import type { TpmsAttest } from '../tpms-attest.js';
import type { TpmtSignature } from '../tpmt-signature.js';

/** The checks `checkSignedAttest` runs, in order; quotes and certifications report them under these names. */
export type SignedAttestCheck = 'signature-scheme' | 'signature' | 'attest-structure';

export type SignedAttest =
  | { readonly valid: true; readonly attest: TpmsAttest }
  | { readonly valid: false; readonly failedCheck: SignedAttestCheck; readonly reason: string };

export interface SignedAttestInput {
  /** The signing key (AK, IAK), already checked by `signingKeyFrom`. */
  readonly key: KeyObject;
  readonly signature: TpmtSignature;
  /** TPMS_ATTEST bytes, or a parsed one whose `raw` bytes the signature covers. */
  readonly attest: Uint8Array | TpmsAttest;
  /** Optionally pins the signature scheme (`rsassa`, `rsapss`, `ecdsa` or a TPM_ALG_ID). */
  readonly signAlg?: string | number;
  /** The signer as the reason names it: "the AK", "the certifying key". */
  readonly signer: string;
  /** Parses the attest bytes once the signature verified (copying, or in place on a hot path). */
  readonly parse: (bytes: Uint8Array) => TpmsAttest;
  /** The signature verified ahead (`verifyQuoteSignatureAhead`); used only when it is about this key, signature and attest. */
  readonly verdict?: SignatureVerdict;
}

/**
 * What verifying a quote and a certification share (keylime-protocol §5.5, §7.2): the signature
 * scheme suits the key (RSA: RSASSA or RSAPSS; ECC: ECDSA) and is `signAlg` when pinned; the signature
 * over the exact TPMS_ATTEST bytes verifies; only then is the attest parsed, so a forged or corrupted
 * attest reports `signature` and a signed but malformed one `attest-structure`. The caller checks the
 * signature hash before, and the attestation type and contents after.
 */
export function checkSignedAttest(input: SignedAttestInput): SignedAttest {
  const pinnedScheme = input.signAlg === undefined ? undefined : resolveSignScheme(input.signAlg);
  if (input.signAlg !== undefined && pinnedScheme === undefined) {
    return { valid: false, failedCheck: 'signature-scheme', reason: `unknown signature scheme ${String(input.signAlg)}` };
  }
  const schemeProblem = signatureSchemeProblem(input.key, input.signature, pinnedScheme);
  if (schemeProblem !== null) {
    return { valid: false, failedCheck: 'signature-scheme', reason: schemeProblem };
  }
  const attestBytes = input.attest instanceof Uint8Array ? input.attest : input.attest.raw;
  const valid = verdictFor(input.verdict, input.key, input.signature, attestBytes) ?? tpmSignatureVerifies(input.key, input.signature, attestBytes);
  if (!valid) {
    return { valid: false, failedCheck: 'signature', reason: `signature does not verify with ${input.signer}` };
  }
  if (!(input.attest instanceof Uint8Array)) {
    return { valid: true, attest: input.attest };
  }
  try {
    return { valid: true, attest: input.parse(input.attest) };
  } catch (error) {
    if (error instanceof TpmParseError) {
      return { valid: false, failedCheck: 'attest-structure', reason: `signed TPMS_ATTEST is malformed: ${error.message}` };
    }
    throw error;
  }
}
