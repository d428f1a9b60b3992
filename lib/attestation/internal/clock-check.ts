import type { PreviousClockInfo } from '../../tpm/quote-clock.js';
import type { TpmsClockInfo } from '../../tpm/tpms-attest.js';

/**
 * The TPM clock info the verifier keeps between rounds (Keylime's `tpm_clockinfo` column,
 * `{"clock","resetCount","restartCount","safe"}`; spec §7.3). The rules themselves are lib/tpm's
 * `clockProblem`, applied by `verifyQuote` when it is given the previous clock info.
 */

/** TPMS_CLOCK_INFO as persisted. `clock` (u64 milliseconds) is a decimal string so JSON keeps it exact. */
export interface StoredClockInfo {
  readonly clock: string;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
}

/** The JSON form of a verified quote's clock info. */
export function storeClockInfo(info: TpmsClockInfo): StoredClockInfo {
  return { clock: info.clock.toString(), resetCount: info.resetCount, restartCount: info.restartCount, safe: info.safe };
}

/** The stored form back as lib/tpm's `previousClock` input. */
export function previousClockInfo(stored: StoredClockInfo): PreviousClockInfo {
  return { clock: BigInt(stored.clock), resetCount: stored.resetCount, restartCount: stored.restartCount, safe: stored.safe };
}
