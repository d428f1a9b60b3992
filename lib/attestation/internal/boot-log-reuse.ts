import type { QuoteVerified } from '../../tpm/verify-quote.js';
import type { RememberedBootLog } from '../boot-log-memo.js';
import { PcrsWithAdded } from './pcrs-with-added.js';

/** PCR 0: the PCR whose selection decides whether a Keylime agent sends its boot log (spec §2). */
export const BOOT_LOG_PCR = 0;

export type BootLogReuse =
  /** The quote's PCRs with the remembered PCR 0 added: judge them against the remembered log. */
  | { readonly usable: true; readonly pcrs: ReadonlyMap<number, Uint8Array> }
  /** The remembered log cannot stand for this quote: no verdict, a full round instead. */
  | { readonly usable: false; readonly reason: string };

/**
 * Whether a round asked without PCR 0 (so without the boot log) can be judged with `remembered`, from
 * the verified quote only. It can when the quote is in the remembered bank, its resetCount and
 * restartCount equal the remembered ones — no TPM Reset or Restart since that log was verified, so PCR 0
 * cannot have been reset and the log still describes this boot — and every other remembered boot PCR is
 * quoted, so the log's replay is compared with current values as in a round that carried it.
 *
 * Does not judge the PCRs: the measured-boot check does that with the returned ones, and fails a boot
 * PCR that no longer matches the log (`measured_boot.invalid_pcr_<n>`). A runtime extend of PCR 0 alone
 * is not seen until the next full round, at most `BOOT_LOG_RECHECK_SECONDS` later (Keylime sees it in the
 * next round); it changes nothing that booted.
 *
 * Assumes the AK does not outlive `TPM2_Clear`, which sets both counts (and the clock) back to 0, so
 * that reboots after a Clear could reach the remembered counts again: Keylime's AK (`tpm2_createak`,
 * ours and rust-keylime's) is a child of the EK, and a Clear makes its blob unloadable.
 */
export function reuseBootLog(remembered: RememberedBootLog, verified: QuoteVerified, pcrs: ReadonlyMap<number, Uint8Array>, hashAlg: string): BootLogReuse {
  if (hashAlg !== remembered.context.hashAlg) {
    return { usable: false, reason: `the quote is in the ${hashAlg} bank, the remembered log was verified in ${remembered.context.hashAlg}` };
  }
  const { resetCount, restartCount } = verified.clockInfo;
  if (resetCount !== remembered.resetCount || restartCount !== remembered.restartCount) {
    return {
      usable: false,
      reason: `the TPM was reset or restarted (resetCount ${remembered.resetCount} → ${resetCount}, restartCount ${remembered.restartCount} → ${restartCount})`,
    };
  }
  const pcr0 = remembered.bootPcrs.get(BOOT_LOG_PCR);
  if (pcr0 === undefined) {
    return { usable: false, reason: 'the remembered quote has no PCR 0' };
  }
  let missing: number[] | undefined;
  for (const pcr of remembered.bootPcrs.keys()) {
    if (pcr !== BOOT_LOG_PCR && !pcrs.has(pcr)) {
      (missing ??= []).push(pcr);
    }
  }
  if (missing !== undefined) {
    return { usable: false, reason: `remembered boot PCRs ${missing.join(', ')} are not quoted` };
  }
  if (pcrs.has(BOOT_LOG_PCR)) {
    return { usable: true, pcrs };
  }
  return { usable: true, pcrs: new PcrsWithAdded(pcrs, BOOT_LOG_PCR, pcr0) };
}
