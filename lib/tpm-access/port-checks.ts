import { TpmAccessError } from './tpm-access-error.js';
import { DIGEST_SIZES, type QuoteRequest, type TpmHashAlgorithm } from './tpm-port.js';

/**
 * Argument checks shared by both adapters, so a bad call fails the same way whichever TPM is behind
 * the port, before anything reaches a TPM.
 */

/** PC Client TPMs have 24 PCRs (TCG PC Client Platform TPM Profile §4.6). */
export const PCR_COUNT = 24;

/** TPM2_Quote qualifyingData is a TPM2B_DATA, at most sizeof(TPMT_HA) = 66 bytes; Keylime caps nonces at 64. */
export const MAX_NONCE_BYTES = 64;

export function checkHashAlgorithm(hashAlg: string): TpmHashAlgorithm {
  if (!Object.hasOwn(DIGEST_SIZES, hashAlg)) {
    throw new TpmAccessError(`hash algorithm ${JSON.stringify(hashAlg)} is not one of ${Object.keys(DIGEST_SIZES).join(', ')}`);
  }
  return hashAlg as TpmHashAlgorithm;
}

export function checkPcrIndex(index: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= PCR_COUNT) {
    throw new TpmAccessError(`PCR index ${index} is not an integer from 0 to ${PCR_COUNT - 1}`);
  }
  return index;
}

/** Sorted, de-duplicated, range-checked PCR indices. */
export function checkPcrList(indices: readonly number[]): number[] {
  return [...new Set(indices.map(checkPcrIndex))].sort((a, b) => a - b);
}

export function checkDigest(bank: TpmHashAlgorithm, digest: Uint8Array): Uint8Array {
  const size = DIGEST_SIZES[checkHashAlgorithm(bank)];
  if (digest.length !== size) {
    throw new TpmAccessError(`a ${bank} digest has ${size} bytes, got ${digest.length}`);
  }
  return digest;
}

/** PCR_Reset from locality 0 is allowed for PCR 16 (debug) and 23 (application) only (PC Client PTP Table 4). */
export function checkResettablePcr(index: number): number {
  if (checkPcrIndex(index) !== 16 && index !== 23) {
    throw new TpmAccessError(`PCR ${index} cannot be reset from locality 0 (only 16 and 23)`);
  }
  return index;
}

export function checkQuoteRequest(request: QuoteRequest): { nonce: Uint8Array; pcrs: number[]; hashAlg: TpmHashAlgorithm } {
  const hashAlg = checkHashAlgorithm(request.hashAlg);
  if (request.nonce.length > MAX_NONCE_BYTES) {
    throw new TpmAccessError(`nonce of ${request.nonce.length} bytes exceeds ${MAX_NONCE_BYTES}`);
  }
  const pcrs = checkPcrList(request.pcrs);
  if (pcrs.length === 0) {
    throw new TpmAccessError('a quote needs at least one PCR');
  }
  return { nonce: request.nonce, pcrs, hashAlg };
}

/** Qualifying data of a TPM2_Certify: at most 64 bytes, like a quote's nonce. */
export function checkQualifyingData(data: Uint8Array): Uint8Array {
  if (data.length > MAX_NONCE_BYTES) {
    throw new TpmAccessError(`qualifying data of ${data.length} bytes exceeds ${MAX_NONCE_BYTES}`);
  }
  return data;
}
