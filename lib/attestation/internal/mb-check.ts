import { checkMeasuredBootStepwise } from '../../mb/check-measured-boot.js';
import { MB_MATCH_ALLOWANCE_FAILURE_ID, type MbFailure } from '../../mb/mb-failure.js';
import type { MbRefstate } from '../../mb/mb-refstate.js';
import { MatchAllowanceExceeded, type MatchAllowance } from '../../python-regex/match-allowance.js';
import { MEASUREDBOOT_PCRS } from '../../tpm/keylime-profile.js';
import type { QuoteHashAlg } from '../algorithms.js';
import { hashParts, toHex } from './digest.js';
import type { FailureEvent } from './failure.js';
import type { MeasuredBootMemo } from '../mb-check-memo.js';
import { unusedPcrEvent } from '../pcr-checks.js';
import { finish, type Stepwise } from '../../ima/stepwise.js';

/** Keylime `[verifier] measured_boot_policy_name`: which policy judges the refstate. */
export type MeasuredBootPolicyName = 'example' | 'accept-all';

/** The measured-boot part of a round's input: the agent's log and what the enrolment asks of it. */
export interface MbRoundInput {
  /** `mb_measurement_list` (base64) or the raw log; absent when the agent sent none. */
  readonly eventLog: string | Uint8Array | null | undefined;
  readonly refstate: MbRefstate | null;
  /** False on later rounds with `measured_boot_evaluate = once`. */
  readonly evaluatePolicy: boolean;
  readonly policyName: MeasuredBootPolicyName;
  /** The caller's memo (the verifier service owns one); absent: checked afresh. */
  readonly memo?: MeasuredBootMemo | undefined;
}

export interface MbCheckInput extends MbRoundInput {
  /** Verified PCRs of the quote's bank. */
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  readonly hashAlg: QuoteHashAlg;
  /** What matching the refstate's `kernel_cmdline` may spend this round; absent: not bounded. */
  readonly allowance?: MatchAllowance | undefined;
}

export interface MbClaims {
  /** Quoted PCRs whose value the boot log replays to. */
  readonly replayedPcrs: readonly number[];
  /** Whether the refstate was evaluated this round, and with which policy. */
  readonly policy: MeasuredBootPolicyName | null;
}

export interface MbCheckOutcome {
  /** `measured_boot.parser.*`: reported whenever a log was sent and does not parse (Keylime `parse_mb_bootlog`). */
  readonly parseEvents: readonly FailureEvent[];
  /** `measured_boot.invalid_pcr_<n>` and `pcr_validation.unused_pcr_<n>`. */
  readonly pcrEvents: readonly FailureEvent[];
  /** `measured_boot.policy_<name>` and `measured_boot.missing_pcrs`. */
  readonly policyEvents: readonly FailureEvent[];
  /**
   * `boot_aggregate` values the verified boot PCRs give (H(PCR 0‖…‖7) and H(PCR 0‖…‖9) in the quote's
   * bank), handed to the IMA check like Keylime's log-derived aggregates.
   */
  readonly bootAggregates: readonly string[];
  readonly claims: MbClaims | null;
}

/**
 * The measured-boot part of Keylime's `check_pcrs` (spec §7.4, §7.8) through lib/mb's
 * `checkMeasuredBoot`. Without a refstate the log only serves `boot_aggregate` (and a log that does
 * not parse is still reported, as Keylime does). With one: no log means `unused_pcr_<n>` for every
 * quoted boot PCR; otherwise every quoted PCR 0–9, 11–15 must equal the log's replay, and the refstate
 * is evaluated when `evaluatePolicy` (measured_boot_evaluate `once`/`always`) with the `example` policy
 * (`accept-all` accepts any log that replays).
 *
 * Stricter than Keylime: `boot_aggregate` values come only from boot PCRs whose replay matched the
 * quote, and a refstate with no boot PCR in the quote is `measured_boot.missing_pcrs`. A refstate
 * whose `kernel_cmdline` would pass the round's match allowance is not judged:
 * `measured_boot.policy.match_allowance_exceeded`, no claims and no `boot_aggregate` (the memo keeps
 * nothing of it, the next round tries again).
 */
export function checkMbLog(input: MbCheckInput): MbCheckOutcome {
  return finish(checkMbLogStepwise(input));
}

/**
 * `checkMbLog`, pausing between pieces of the log as it is decoded, parsed, replayed and evaluated
 * (`Stepwise`): the same outcome. A memo hit pauses nowhere.
 */
export function* checkMbLogStepwise(input: MbCheckInput): Stepwise<MbCheckOutcome> {
  try {
    return input.memo === undefined ? yield* checkMbLogOnce(input) : yield* input.memo.check(input, checkMbLogOnce);
  } catch (error) {
    if (!(error instanceof MatchAllowanceExceeded)) {
      throw error;
    }
    const event: FailureEvent = {
      eventId: MB_MATCH_ALLOWANCE_FAILURE_ID,
      context: { message: `the refstate's kernel_cmdline is too costly to evaluate for this round: ${error.message}` },
      recoverable: true,
    };
    return { parseEvents: [], pcrEvents: [], policyEvents: [event], bootAggregates: [], claims: null };
  }
}

function* checkMbLogOnce(input: MbCheckInput): Stepwise<MbCheckOutcome> {
  const quotedBoot = MEASUREDBOOT_PCRS.filter((pcr) => input.pcrs.has(pcr));
  const hasLog = input.eventLog !== undefined && input.eventLog !== null && input.eventLog !== '';
  if (!hasLog) {
    const pcrEvents = input.refstate === null ? [] : quotedBoot.map((pcr) => unusedPcrEvent(pcr, 'Measured Boot'));
    return { parseEvents: [], pcrEvents, policyEvents: [], bootAggregates: [], claims: null };
  }
  const evaluate = input.refstate !== null && input.evaluatePolicy && input.policyName === 'example';
  const quotedPcrs = {
    [input.hashAlg]: Object.fromEntries(quotedBoot.map((pcr) => [String(pcr), input.pcrs.get(pcr) as Uint8Array])),
  };
  const result = yield* checkMeasuredBootStepwise({
    eventLog: input.eventLog as string | Uint8Array,
    quotedPcrs,
    ...(evaluate && input.refstate !== null ? { refstate: input.refstate } : {}),
    ...(input.allowance === undefined ? {} : { matchAllowance: input.allowance }),
  });
  if (result.replay === null) {
    return { parseEvents: result.failures.map(toEvent), pcrEvents: [], policyEvents: [], bootAggregates: [], claims: null };
  }
  const matched = new Set(result.replay.matched.filter((m) => m.bank === input.hashAlg).map((m) => m.pcrIndex));
  const bootAggregates = aggregates(input, matched);
  const claims: MbClaims = {
    replayedPcrs: [...matched].sort((a, b) => a - b),
    policy: input.refstate !== null && input.evaluatePolicy ? input.policyName : null,
  };
  if (input.refstate === null) {
    return { parseEvents: [], pcrEvents: [], policyEvents: [], bootAggregates, claims };
  }
  const pcrIds = new Set(result.replay.failures.map((f) => f.eventId));
  return {
    parseEvents: [],
    pcrEvents: result.failures.filter((f) => pcrIds.has(f.eventId)).map(toEvent),
    policyEvents: result.failures.filter((f) => !pcrIds.has(f.eventId)).map(toEvent),
    bootAggregates,
    claims,
  };
}

function aggregates(input: MbCheckInput, matched: ReadonlySet<number>): string[] {
  const out: string[] = [];
  for (const last of [7, 9]) {
    const range = [...Array(last + 1).keys()];
    if (range.every((pcr) => matched.has(pcr))) {
      out.push(toHex(hashParts(input.hashAlg, ...range.map((pcr) => input.pcrs.get(pcr) as Uint8Array))));
    }
  }
  return out;
}

function toEvent(failure: MbFailure): FailureEvent {
  return { eventId: failure.eventId, context: failure.context, recoverable: failure.recoverable };
}
