import { TPM_ST_ATTEST_CERTIFY } from './constants.js';
import { tpmObjectName } from './object-name.js';
import { checkSignedAttest } from './internal/signed-attest.js';
import { signatureHashProblem, signingKeyFrom, type SigningKeyInput } from './tpm-signature-check.js';
import { parseTpmsAttest, type TpmsAttest } from './tpms-attest.js';
import { parseTpmtSignature, type TpmtSignature } from './tpmt-signature.js';
import type { TpmtPublic } from './tpmt-public.js';
import { bytesEqual } from '../bytes/bytes-equal.js';

/** The check a certification failed, in the order they run. */
export type CertifyCheck = 'hash-alg' | 'signature-scheme' | 'signature' | 'attest-structure' | 'attest-type' | 'qualifying-data' | 'name';

export interface VerifyCertifyInput {
  /** The certifying key (for Keylime: the IAK). */
  readonly signerPublic: SigningKeyInput;
  readonly attest: Uint8Array | TpmsAttest;
  readonly signature: Uint8Array | TpmtSignature;
  /** extraData the certification must carry (Keylime IAK: SHA-256 of the agent UUID; PoP: the nonce). */
  readonly qualifyingData: Uint8Array;
  /** The certified object (the AK): its TPM name, or its parsed public area to compute the name from. */
  readonly certified: Uint8Array | TpmtPublic;
  /** Optional: the signature hash that must have been used (downgrade protection). */
  readonly hashAlg?: string | number;
  /** Optional: the signature scheme that must have been used. */
  readonly signAlg?: string | number;
}

export type CertifyVerdict =
  | { readonly valid: true; readonly attest: TpmsAttest }
  | { readonly valid: false; readonly failedCheck: CertifyCheck; readonly reason: string };

function reject(failedCheck: CertifyCheck, reason: string): CertifyVerdict {
  return { valid: false, failedCheck, reason: `certify: ${reason}` };
}

/**
 * Verifies a TPM2_Certify result (keylime-protocol §5.5, Keylime `Tpm.verify_tpm_object`): the
 * signature scheme suits the signer, the signature over the exact TPMS_ATTEST bytes verifies (hash
 * from the signature, or pinned by `hashAlg`), the attest has type TPM_ST_ATTEST_CERTIFY, its
 * extraData equals `qualifyingData` and TPMS_CERTIFY_INFO.name equals the certified object's name
 * (all compared in constant time). Unsigned inputs throw `TpmParseError`/`TpmKeyError` when
 * malformed. Does not check qualifiedName, the clock or firmwareVersion.
 */
export function verifyCertify(input: VerifyCertifyInput): CertifyVerdict {
  const key = signingKeyFrom(input.signerPublic);
  const signature = input.signature instanceof Uint8Array ? parseTpmtSignature(input.signature) : input.signature;
  const expectedName = input.certified instanceof Uint8Array ? input.certified : tpmObjectName(input.certified);

  if (input.hashAlg !== undefined) {
    const problem = signatureHashProblem(signature, input.hashAlg);
    if (problem !== null) {
      return reject('hash-alg', problem);
    }
  }
  const signed = checkSignedAttest({
    key, signature, attest: input.attest, signAlg: input.signAlg, signer: 'the certifying key', parse: parseTpmsAttest,
  });
  if (!signed.valid) {
    return reject(signed.failedCheck, signed.reason);
  }
  const attest = signed.attest;
  if (attest.type !== TPM_ST_ATTEST_CERTIFY) {
    return reject('attest-type', `attestation type 0x${attest.type.toString(16)} is not TPM_ST_ATTEST_CERTIFY`);
  }
  if (!bytesEqual(attest.extraData, input.qualifyingData)) {
    return reject('qualifying-data', 'extraData does not match the expected qualifying data');
  }
  if (!bytesEqual(attest.attested.name, expectedName)) {
    return reject('name', 'the certified name is not the expected object name');
  }
  return { valid: true, attest };
}
