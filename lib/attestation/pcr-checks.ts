import { DATA_PCR } from '../tpm/keylime-profile.js';
import type { QuoteHashAlg } from './algorithms.js';
import { digestInHexList, digestLength, hashParts, toHex } from './internal/digest.js';
import { FailureComponent, failureEvent, type FailureEvent } from './internal/failure.js';
import type { TpmPolicy } from './tpm-policy.js';
import { bytesEqual } from '../bytes/bytes-equal.js';

/**
 * PCR checks of Keylime's `check_pcrs` (keylime/tpm/tpm_abstract.py; spec §7.4) that need neither IMA
 * nor the boot log: the PCR 16 key binding, `tpm_policy` values and PCRs the policy wants but the quote
 * lacks. Every event here is recoverable (the other checks still run), as in Keylime.
 */

const pcrEvent = (event: string, context: Record<string, unknown> | string): FailureEvent =>
  failureEvent(FailureComponent.PCR_VALIDATION, event, context, true);

/**
 * The value PCR 16 must hold after the agent's `PCR_Reset(16); PCR_Extend(16, H(pubkey_pem))`:
 * `H(0^n ‖ H(pubkey_pem_utf8))` in the quote's bank (Keylime `sim_extend`; spec §3.3, §7.4).
 */
export function expectedDataPcr(hashAlg: QuoteHashAlg, pubkeyPem: string): Uint8Array {
  const zeros = new Uint8Array(digestLength(hashAlg));
  return hashParts(hashAlg, zeros, hashParts(hashAlg, Buffer.from(pubkeyPem, 'utf8')));
}

/** `invalid_pcr_16` when PCR 16 does not bind `pubkeyPem`, `missing_pcr_16` when it was not quoted. */
export function checkDataPcr(
  pcrs: ReadonlyMap<number, Uint8Array>,
  hashAlg: QuoteHashAlg,
  pubkeyPem: string,
): FailureEvent[] {
  const quoted = pcrs.get(DATA_PCR);
  if (quoted === undefined) {
    return [pcrEvent(`missing_pcr_${DATA_PCR}`, `Data PCR ${DATA_PCR} is missing in quote, but is required`)];
  }
  const expected = expectedDataPcr(hashAlg, pubkeyPem);
  if (!bytesEqual(quoted, expected)) {
    return [pcrEvent(`invalid_pcr_${DATA_PCR}`, { got: toHex(quoted), expected: toHex(expected) })];
  }
  return [];
}

/**
 * One `invalid_pcr_<n>` event when quoted PCR `pcr` is listed in `tpm_policy` and its value is not one
 * of the listed values. PCRs the policy does not list are not judged here.
 */
export function checkPolicyPcr(pcr: number, value: Uint8Array, policy: TpmPolicy): FailureEvent[] {
  const accepted = policy.pcrs.get(pcr);
  if (accepted === undefined || digestInHexList(value, accepted)) {
    return [];
  }
  return [
    pcrEvent(`invalid_pcr_${pcr}`, { context: 'PCR value is not in allowlist', got: toHex(value), expected: accepted }),
  ];
}

/**
 * `missing_pcrs` listing every required PCR the quote does not carry: the PCRs of `tpm_policy`, plus
 * `alsoRequired` (PCR 10 when a runtime policy is enrolled: stricter than Keylime, which silently skips
 * IMA when the agent leaves PCR 10 out of the quote).
 */
export function checkMissingPcrs(
  pcrs: ReadonlyMap<number, Uint8Array>,
  policy: TpmPolicy,
  alsoRequired: readonly number[] = [],
): FailureEvent[] {
  const missing: number[] = [];
  for (const pcr of policy.pcrs.keys()) {
    if (!pcrs.has(pcr)) missing.push(pcr);
  }
  for (const pcr of alsoRequired) {
    if (!pcrs.has(pcr) && !missing.includes(pcr)) missing.push(pcr);
  }
  if (missing.length === 0) {
    return [];
  }
  missing.sort((a, b) => a - b);
  return [pcrEvent('missing_pcrs', { context: 'PCRs are missing in quote', data: missing })];
}

/** `unused_pcr_<n>`: a PCR was quoted for a check whose log the agent did not send (IMA or boot log). */
export function unusedPcrEvent(pcr: number, what: string): FailureEvent {
  return pcrEvent(`unused_pcr_${pcr}`, `${what} PCR ${pcr} in policy, but no measurement list provided`);
}
