/**
 * The one port through which the node agent uses a TPM (STYLE.md item 16). Two adapters implement it
 * with identical file names: `tpm2-tools/tpm-adapter.ts` (tpm2-tools against swtpm or a device) and
 * `software/tpm-adapter.ts` (an in-process software TPM for fleet simulations). Everything crossing
 * the port is raw TPM bytes, exactly as tpm2-tools would write them, so the verifier side never knows
 * which adapter produced them.
 */

import { TPM_ALG_SHA1, TPM_ALG_SHA256, TPM_ALG_SHA384, TPM_ALG_SHA512, digestSize } from '../tpm/constants.js';

/** PCR banks and signature hashes the port accepts (Keylime `hash_alg` names). */
export type TpmHashAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** Keylime `tpm_enc_alg` family of the EK. */
export type EkAlgorithm = 'rsa' | 'ecc';

/** Keylime `tpm_sign_alg` of the AK. */
export type AkSignAlgorithm = 'rsassa' | 'ecdsa';

/** Digest size in bytes of each hash the port accepts (from the shared `HASH_ALGORITHMS`). */
export const DIGEST_SIZES: Readonly<Record<TpmHashAlgorithm, number>> = Object.freeze({
  sha1: digestSize(TPM_ALG_SHA1) as number,
  sha256: digestSize(TPM_ALG_SHA256) as number,
  sha384: digestSize(TPM_ALG_SHA384) as number,
  sha512: digestSize(TPM_ALG_SHA512) as number,
});

/** The endorsement key as the registrar receives it. */
export interface EkInfo {
  /** TPM2B_PUBLIC of the EK (u16 size, then TPMT_PUBLIC). */
  ekPublic: Uint8Array;
  /** DER EK certificate from the TCG NV index (0x01c00002 RSA, 0x01c0000a ECC), or null if none. */
  ekCertificate: Uint8Array | null;
  ekAlgorithm: EkAlgorithm;
}

/** The attestation key, persisted in the TPM so later runs reuse it. */
export interface AkInfo {
  /** TPM2B_PUBLIC of the AK. */
  akPublic: Uint8Array;
  /** TPM name: nameAlg (u16) ‖ H_nameAlg(TPMT_PUBLIC). */
  akName: Uint8Array;
  /** Persistent handle (0x81xxxxxx) for tpm2-tools; a synthetic handle for the software TPM. */
  handle: number;
  hashAlg: TpmHashAlgorithm;
  signAlg: AkSignAlgorithm;
}

export interface QuoteRequest {
  /** Qualifying data (for Keylime: the ASCII bytes of the verifier's nonce); at most 64 bytes. */
  nonce: Uint8Array;
  /** PCR indices (0–23) to quote, all in the `hashAlg` bank. The caller adds PCR 16 if it wants it. */
  pcrs: readonly number[];
  /** PCR bank and signature hash. Must be the hash the AK was created for. */
  hashAlg: TpmHashAlgorithm;
}

/** The three outputs of `tpm2_quote -m -s -o`, byte for byte. */
export interface QuoteResult {
  /** TPMS_ATTEST as signed (big-endian TPM marshalling). */
  attest: Uint8Array;
  /** TPMT_SIGNATURE. */
  signature: Uint8Array;
  /** The tpm2-tools serialized PCR file (little-endian TPML_PCR_SELECTION + TPML_DIGEST list). */
  pcrBlob: Uint8Array;
}

/** TPM2_Certify's two outputs, as `tpm2_certify -o -s` would write them. */
export interface CertifyResult {
  /** TPMS_ATTEST (type TPM_ST_ATTEST_CERTIFY) as signed. */
  attest: Uint8Array;
  /** TPMT_SIGNATURE. */
  signature: Uint8Array;
}

/** One PCR_Extend: `digest` (of the bank's size) into PCR `index` of `bank`. */
export interface PcrExtend {
  index: number;
  bank: TpmHashAlgorithm;
  digest: Uint8Array;
}

/** What the node agent needs from a TPM. Every method may throw `TpmAccessError` (ERR_TPM_ACCESS). */
export interface Tpm {
  /** Which backend this is, for logs and the agent's info endpoint. */
  readonly kind: 'tpm2-tools' | 'software';

  /** Returns the EK public area and its certificate, creating the EK from the standard template if needed. */
  ensureEk(): Promise<EkInfo>;

  /**
   * Returns the AK for `hashAlg`, creating it under the EK and persisting it on first use; later calls
   * (and later processes on the same TPM) reuse the persisted key.
   */
  ensureAk(hashAlg: TpmHashAlgorithm): Promise<AkInfo>;

  /**
   * TPM2_ActivateCredential with the most recently ensured AK and the EK (EK policy session:
   * PolicySecret(TPM_RH_ENDORSEMENT)). `blob` is the tpm2-tools credential file
   * (0xBADCC0DE ‖ version 1 ‖ TPM2B_ID_OBJECT ‖ TPM2B_ENCRYPTED_SECRET). Returns the secret.
   */
  activateCredential(blob: Uint8Array): Promise<Uint8Array>;

  /** TPM2_PCR_Extend of one bank of one PCR. `digest` must have the bank's digest size. */
  extendPcr(index: number, bank: TpmHashAlgorithm, digest: Uint8Array): Promise<void>;

  /** Many extends, applied in order (fewer round trips for event-log and IMA emulation). */
  extendPcrs(entries: readonly PcrExtend[]): Promise<void>;

  /** TPM2_PCR_Read: the values of `indices` in `bank`. */
  readPcrs(bank: TpmHashAlgorithm, indices: readonly number[]): Promise<Map<number, Uint8Array>>;

  /** TPM2_PCR_Reset (locality 0 may reset PCR 16 and 23 only). */
  resetPcr(index: number): Promise<void>;

  /** TPM2_Quote with the AK for `hashAlg`, retried until the PCR values read match the quoted digest. */
  quote(request: QuoteRequest): Promise<QuoteResult>;

  /**
   * TPM2_Certify of the AK for `hashAlg` by itself, with `qualifyingData` (at most 64 bytes) as
   * extraData: the push model's proof of possession (keylime-protocol §10.2).
   */
  certifyAk(hashAlg: TpmHashAlgorithm, qualifyingData: Uint8Array): Promise<CertifyResult>;

  /** Releases what the adapter holds (temp files). Persistent TPM objects are kept. */
  close(): Promise<void>;
}
