/**
 * TPM clock sanity check between two consecutive quotes of one agent (Keylime
 * `Tpm.check_quote_timing`; spec §7.3; TPMS_CLOCK_INFO in TPM 2.0 Library Part 2 §10.11.1, Table 120).
 * Only the pull loop runs it: one-shot evidence has no previous quote.
 */

/** TPMS_CLOCK_INFO as persisted between rounds. `clock` (u64, ms) is a decimal string so JSON keeps it exact. */
export interface StoredClockInfo {
  readonly clock: string;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
}

/** TPMS_CLOCK_INFO as read from a verified quote. */
export interface QuoteClockInfo {
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
}

export type ClockCheckResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * Accepts `current` after `previous` when the TPM's counters can only have moved forward:
 * - `safe` must be set (otherwise Clock may have been reported ahead of what the TPM saved; Part 1 §36.3);
 * - `resetCount` must not decrease; with the same `resetCount`, `restartCount` must not decrease
 *   (a TPM Reset zeroes `restartCount`, so after a reboot it may legitimately be lower);
 * - `clock` must strictly increase (Clock only advances while `safe`; TPM2_ClockSet cannot set it back).
 *
 * Keylime applies the same rules except two corner cases, where we are deliberately different:
 * it refuses a lower `restartCount` even after a TPM Reset (a false failure after reboot, spec §13 q6),
 * and it skips the clock comparison when both counters changed.
 * With no previous clock info (first quote) anything with `safe` set passes.
 */
export function checkQuoteClock(previous: StoredClockInfo | null, current: QuoteClockInfo): ClockCheckResult {
  if (!current.safe) {
    return { ok: false, reason: 'clock safe flag is disabled' };
  }
  if (previous === null) {
    return { ok: true };
  }
  if (current.resetCount < previous.resetCount) {
    return { ok: false, reason: 'resetCount value decreased on TPM between two consecutive quotes' };
  }
  if (current.resetCount === previous.resetCount && current.restartCount < previous.restartCount) {
    return { ok: false, reason: 'restartCount value decreased on TPM between two consecutive quotes' };
  }
  if (current.clock <= BigInt(previous.clock)) {
    return { ok: false, reason: 'clock timestamp issued by TPM did not increase between two consecutive quotes' };
  }
  return { ok: true };
}

/** The JSON form stored in the agent state. */
export function storeClockInfo(info: QuoteClockInfo): StoredClockInfo {
  return { clock: info.clock.toString(), resetCount: info.resetCount, restartCount: info.restartCount, safe: info.safe };
}
