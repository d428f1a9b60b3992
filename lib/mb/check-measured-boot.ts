import { EventLogParseError } from '../bytes/parse-errors.js';
import { MEASUREDBOOT_PCRS } from '../tpm/keylime-profile.js';
import type { ParsedEventLog } from './event-log.js';
import { decodeEventLogBase64Stepwise, eventLogBytesFromInput } from './event-log-input.js';
import { evaluateMbPolicyStepwise, type MbPolicyEvaluation } from './evaluate-mb-policy.js';
import { MB_BASE64_FAILURE_ID, MB_PARSER_FAILURE_ID, mbFailure, type MbFailure } from './mb-failure.js';
import type { MbRefstate } from './mb-refstate.js';
import type { MatchAllowance } from '../python-regex/match-allowance.js';
import { EventLogTooLarge, parseEventLogStepwise } from './parse-event-log.js';
import { verifyReplayStepwise, type QuotedPcrs, type ReplayVerification } from './verify-replay.js';
import { finish, type Stepwise } from '../ima/stepwise.js';

export interface MeasuredBootCheck {
  /** True when the log parsed, replayed to the quoted PCRs and (if a refstate was given) passed it. */
  readonly passed: boolean;
  /** All Keylime failure events, in the order found; empty when `passed`. */
  readonly failures: readonly MbFailure[];
  /** Null when the log did not parse. */
  readonly log: ParsedEventLog | null;
  /** Null when the log did not parse. */
  readonly replay: ReplayVerification | null;
  /** Null when no refstate was given or the replay did not match. */
  readonly evaluation: MbPolicyEvaluation | null;
}

/**
 * The measured-boot step of an attestation round, for the verification engine: parse the agent's
 * `mb_measurement_list` (base64 text, as Keylime sends it, or bytes: binary or base64), compare its replay with the
 * PCR values of an already verified quote (PCRs 0-9, 11-15 as quoted), then — only if nothing
 * mismatched — evaluate the refstate (when given; parse it once with `parseMbRefstate`).
 *
 * Never throws for bad evidence: a log that does not decode or parse yields
 * `measured_boot.parser.log.base64decode` / `measured_boot.parser.tpm2_eventlog.error`, a replay
 * mismatch `measured_boot.invalid_pcr_<n>`, a policy failure `measured_boot.policy_example` or
 * `measured_boot.missing_pcrs`. Throws only for caller errors (malformed `quotedPcrs`), and what
 * `matchAllowance` throws (`MatchAllowanceExceeded` by default) when the refstate's `kernel_cmdline`
 * would cost more than it allows: the refstate is then not judged, and the caller fails closed.
 */
export function checkMeasuredBoot(input: MeasuredBootInput): MeasuredBootCheck {
  return finish(checkMeasuredBootStepwise(input));
}

export interface MeasuredBootInput {
  readonly eventLog: string | Uint8Array;
  readonly quotedPcrs: QuotedPcrs;
  readonly refstate?: MbRefstate;
  /** What matching the refstate's patterns may spend; absent: not bounded. */
  readonly matchAllowance?: MatchAllowance;
}

/**
 * `checkMeasuredBoot`, pausing between pieces of the base64 text and chunks of events as it decodes,
 * parses, replays and evaluates (`Stepwise`): the verifier resumes it a slice at a time, so that a
 * hostile log of tens of MiB does not hold its event loop. The same check.
 */
export function* checkMeasuredBootStepwise(input: MeasuredBootInput): Stepwise<MeasuredBootCheck> {
  let bytes: Uint8Array;
  try {
    bytes = typeof input.eventLog === 'string' ? yield* decodeEventLogBase64Stepwise(input.eventLog) : eventLogBytesFromInput(input.eventLog);
  } catch (error) {
    return notParsed(error instanceof EventLogTooLarge ? MB_PARSER_FAILURE_ID : MB_BASE64_FAILURE_ID, error);
  }
  let log: ParsedEventLog;
  try {
    log = yield* parseEventLogStepwise(bytes);
  } catch (error) {
    return notParsed(MB_PARSER_FAILURE_ID, error);
  }
  return yield* checkMeasuredBootLogStepwise(log, input.quotedPcrs, input.refstate, input.matchAllowance);
}

/** `checkMeasuredBoot` for a log that is already parsed. */
export function checkMeasuredBootLog(log: ParsedEventLog, quotedPcrs: QuotedPcrs, refstate?: MbRefstate, matchAllowance?: MatchAllowance): MeasuredBootCheck {
  return finish(checkMeasuredBootLogStepwise(log, quotedPcrs, refstate, matchAllowance));
}

function* checkMeasuredBootLogStepwise(log: ParsedEventLog, quotedPcrs: QuotedPcrs, refstate?: MbRefstate, matchAllowance?: MatchAllowance): Stepwise<MeasuredBootCheck> {
  const replay = yield* verifyReplayStepwise(log, quotedPcrs, { pcrs: MEASUREDBOOT_PCRS });
  if (replay.mismatched.length > 0 || replay.verifiedLog === null) {
    const failures = replay.mismatched.length > 0 ? replay.failures : [nothingVerified(replay)];
    return { passed: false, failures, log, replay, evaluation: null };
  }
  if (refstate === undefined) {
    return { passed: true, failures: [], log, replay, evaluation: null };
  }
  const evaluation = yield* evaluateMbPolicyStepwise(replay.verifiedLog, refstate, matchAllowance);
  return { passed: evaluation.passed, failures: evaluation.failures, log, replay, evaluation };
}

/** A parse failure as a Keylime event; anything but our parse error is a bug and is rethrown. */
function notParsed(eventId: string, error: unknown): MeasuredBootCheck {
  if (!(error instanceof EventLogParseError)) {
    throw error;
  }
  const failure = mbFailure(eventId, { context: 'the boot event log could not be parsed', message: error.message });
  return { passed: false, failures: [failure], log: null, replay: null, evaluation: null };
}

function nothingVerified(replay: ReplayVerification): MbFailure {
  return mbFailure('measured_boot.missing_pcrs', {
    context: 'no quoted PCR could be compared with the boot event log',
    unverifiable: replay.unverifiable,
  });
}
