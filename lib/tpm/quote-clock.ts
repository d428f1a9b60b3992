import type { TpmsClockInfo } from './tpms-attest.js';

/**
 * The clock info stored from the last accepted quote. Keylime stores it as JSON
 * (`{"clock","resetCount","restartCount","safe"}`), so numbers and 0/1 are accepted.
 */
export interface PreviousClockInfo {
  readonly clock: bigint | number;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean | number;
}

/**
 * Why a quote's TPMS_CLOCK_INFO is not acceptable after `previous`, or null when it is. Mirrors
 * Keylime `check_quote_timing` (keylime-protocol §7.3), with one deliberate difference:
 * - `safe` must be 1 (TPM 2.0 Part 1 §36.6: 0 means Clock may have gone back since it was last saved);
 * - resetCount must not decrease;
 * - restartCount must not decrease unless resetCount increased: a TPM Reset (reboot) sets
 *   restartCount back to 0 (Part 1 §36.5). Keylime fails that case after a suspend/resume cycle
 *   (protocol §13 q6); we accept it;
 * - unless both counters changed, Clock must strictly increase (Keylime's rule: Clock is
 *   non-volatile and keeps counting across Restart and Reset).
 */
export function clockProblem(current: TpmsClockInfo, previous: PreviousClockInfo | undefined): string | null {
  if (!current.safe) {
    return 'clockInfo.safe is 0: the TPM clock may have been rolled back';
  }
  if (previous === undefined) {
    return null;
  }
  const resetDiff = current.resetCount - previous.resetCount;
  const restartDiff = current.restartCount - previous.restartCount;
  if (resetDiff < 0) {
    return `resetCount went back from ${previous.resetCount} to ${current.resetCount}`;
  }
  if (restartDiff < 0 && resetDiff === 0) {
    return `restartCount went back from ${previous.restartCount} to ${current.restartCount} without a TPM reset`;
  }
  const previousClock = BigInt(previous.clock);
  if ((resetDiff === 0 || restartDiff === 0) && current.clock <= previousClock) {
    return `clock ${current.clock} is not after the previous quote's ${previousClock}`;
  }
  return null;
}
