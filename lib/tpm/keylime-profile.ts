/**
 * The fixed parts of Keylime's attestation profile, in one place: which PCR plays which role, and the
 * TPM algorithms a tenant accepts unless told otherwise. The enrolment builder, the verifier's
 * enrolment check and the identity check read them from here.
 *
 * Sources: keylime/config.py (`IMA_PCR`, `TPM_DATA_PCR`, `MEASUREDBOOT_PCRS`) and the `[tenant]`
 * section of keylime's tenant.conf (`accept_tpm_*_algs`).
 */

/** PCR that Linux IMA extends (`CONFIG_IMA_MEASURE_PCR_IDX`, Keylime `IMA_PCR`). */
export const IMA_PCR = 10;

/** PCR into which the agent extends a hash of its NK public key (Keylime `TPM_DATA_PCR`). */
export const DATA_PCR = 16;

/**
 * PCRs that a measured-boot refstate judges (Keylime `MEASUREDBOOT_PCRS`): the firmware, boot loader
 * and kernel PCRs 0–9 and 11–15 of the TCG PC Client platform firmware profile, without 10 (IMA).
 */
export const MEASUREDBOOT_PCRS: readonly number[] = Object.freeze([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15]);

/** Hash algorithms accepted for quotes by default, strongest first (`accept_tpm_hash_algs`). */
export const DEFAULT_ACCEPTED_HASH_ALGS: readonly string[] = Object.freeze(['sha512', 'sha384', 'sha256']);

/** Key (encryption) algorithms accepted by default (`accept_tpm_encryption_algs`). */
export const DEFAULT_ACCEPTED_ENC_ALGS: readonly string[] = Object.freeze(['ecc', 'rsa']);

/**
 * Signing schemes accepted by default. Keylime's tenant.conf lists `ecschnorr, rsassa`; ironlime
 * accepts the schemes its quote check verifies (no ECSchnorr), as its tenant always has.
 */
export const DEFAULT_ACCEPTED_SIGN_ALGS: readonly string[] = Object.freeze(['rsassa', 'rsapss', 'ecdsa']);

/** Whether bit `pcr` is set in a PCR mask (bit i = PCR i). */
export function maskHasPcr(mask: number, pcr: number): boolean {
  return ((mask >>> pcr) & 1) === 1;
}
