import type { AgentPolicies } from './agent-policies.js';
import type { AttestationClaims } from './attestation-checks.js';
import type { BootLogMemo } from './boot-log-memo.js';
import { countImaLines } from './ima-line-count.js';
import { askInFull, planBootLog, settleBootLog, type BootLogPlan, type PullAgent } from './pull-boot-log.js';
import type { AgentAttestationState } from './agent-state.js';
import type { PullTiming } from './freshness.js';
import type { SignatureVerdict } from '../tpm/signature-verdict.js';
import { evaluateQuoteStepwise, type EvaluateQuoteOptions } from './internal/evaluate-quote.js';
import { finish, type Stepwise } from '../ima/stepwise.js';
import { continuesAcrossReboot } from './internal/pre-checks.js';
import { checkQuoteReplyShape, isFailureEvent } from './internal/quote-reply.js';
import { initialImaReplayState } from '../ima/ima-replay-state.js';
import { internalVerifierFailure, InternalVerifierEvent, type FailureEvent } from './internal/failure.js';
import { recordFailures } from './internal/failure-record.js';
import type { HistoryRow } from './history-row.js';
import { storedFailures } from './stored-failures.js';
import { attestationStatus, OperationalState } from './operational-state.js';
import { labelFailures, type SeverityPolicy } from './severity.js';
import { nextOperationalState, retryDelay } from './internal/state-machine.js';

/**
 * Every transition of the pull loop (keylime/cloud_verifier_tornado.py `process_agent`,
 * `invoke_get_quote`, `invoke_provide_v`; spec §6.2), decided here, purely: the verifier asks what to
 * request, performs it, and hands back what came of it — a reply (untrusted, `unknown`), a transport
 * failure, an exception, a take-over — and gets the next state, the history row to write and what to
 * do next. It decides nothing itself (the registrar's `registration-decision.ts` is the model).
 */

export interface PullSettings extends PullTiming {
  readonly severity: SeverityPolicy;
  readonly engine: EvaluateQuoteOptions;
  /** The boot logs this process verified (the verifier service owns it); absent: every round asks for the log. */
  readonly bootLogs?: BootLogMemo;
}

/** Where an agent stands between rounds: its stored state and the consecutive unanswered attempts (`num_retries`). */
export interface PullPosition {
  readonly state: AgentAttestationState;
  readonly retries: number;
}

/** What the verifier must request next. */
export type PullRequest =
  | {
      readonly kind: 'quote';
      readonly state: AgentAttestationState;
      readonly partial: boolean;
      readonly imaEntry: number;
      /** Undefined: ask with the agent's mask, the log comes or not as it always did. */
      readonly bootLog: BootLogPlan | undefined;
    }
  | { readonly kind: 'deliver_v'; readonly state: AgentAttestationState };

export type PullNext =
  /** POST V to the agent now, then `decideVDelivery` (the round is not over). */
  | { readonly kind: 'deliver_v' }
  /** The next round after `inSeconds`. */
  | { readonly kind: 'poll'; readonly inSeconds: number }
  /** Polling stops (failed, or nothing left to poll). */
  | { readonly kind: 'stop' };

export interface PullDecision {
  readonly state: AgentAttestationState;
  readonly retries: number;
  /** The row to append (with the state, in one write); undefined when nothing was judged. */
  readonly history: HistoryRow | undefined;
  readonly next: PullNext;
}

/** How a request to the agent failed, as the transport saw it (the verifier only classifies the error). */
export type TransportFailure =
  /** No answer: connection refused or reset, TLS failure (wrong pinned certificate), timeout. */
  | { readonly kind: 'no_answer'; readonly message: string }
  /** An answer with a non-2xx HTTP status. */
  | { readonly kind: 'http_status'; readonly status: number; readonly message: string }
  /** An answer that is not a Keylime envelope, or V that could not be wrapped. */
  | { readonly kind: 'bad_reply'; readonly message: string }
  /** A 400 "API version not supported": the agent does not serve the URL's version (spec §0.2). */
  | { readonly kind: 'version_refused'; readonly message: string };

const S = OperationalState;

/** Keylime retries these statuses (408 timeout, 500, 599 = tornado's connection failure; spec §6.2 step 2). */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 500, 599]);

/**
 * The engine's answer to a reply it does not judge: one the remembered boot log cannot stand for (ask
 * again at once, in full), or one from a rebooted node continuing its list (ask again at once from IMA entry 0).
 */
export interface RepeatRound {
  readonly repeat: Extract<PullRequest, { kind: 'quote' }>;
  readonly reason: string;
}

/**
 * The start of a round: START → GET_QUOTE, a retry timer → GET_QUOTE / PROVIDE_V. `partial=1` once the
 * NK key is cached, unless this is the first request or a retry (spec §6.2 step 1).
 *
 * With `boot` (the agent, settings with `bootLogs`, and now in unix seconds), the mask leaves PCR 0 out
 * (no boot log sent) when this process remembers a log it verified for the agent under the same AK,
 * bank, mask, refstate and measured-boot switches within `BOOT_LOG_RECHECK_SECONDS`, and `tpm_policy`
 * names no value for PCR 0; never on a round from START (a restart, a take-over, a reactivation).
 */
export function beginRound(position: PullPosition, boot?: { readonly agent: PullAgent; readonly settings: PullSettings; readonly now: number }): PullRequest {
  const fromStart = position.state.operationalState === S.START;
  let state = withOp(position.state, nextOperationalState(position.state.operationalState, { type: 'poll' }));
  state = withOp(state, nextOperationalState(state.operationalState, { type: 'retry' }));
  if (state.operationalState === S.PROVIDE_V) {
    return { kind: 'deliver_v', state };
  }
  const memo = boot?.settings.bootLogs;
  const bootLog = boot === undefined || memo === undefined ? undefined : planBootLog(position.state, boot.agent, memo, boot.settings.engine.measuredBootPolicy ?? 'example', fromStart, boot.now);
  return { kind: 'quote', state, partial: state.publicKey !== null && position.retries === 0 && !fromStart, imaEntry: state.ima.nextEntry, bootLog };
}

export interface QuoteReplyInput {
  readonly policies: AgentPolicies;
  /** The `results` of the agent's answer, as received. */
  readonly reply: unknown;
  readonly nonce: string;
  readonly imaEntry: number;
  /** Unix seconds. */
  readonly now: number;
  /** The AK signature of the reply's quote, verified ahead (`verifyQuoteSignatureAhead`); the engine checks it is about this quote. */
  readonly signatureVerdict?: SignatureVerdict;
}

/**
 * The agent answered the quote request: judge it (`evaluateQuote`) and say what follows. A reply asked
 * without the boot log that the remembered log cannot stand for (the TPM was reset or restarted, a
 * remembered boot PCR is not quoted, another bank) is not judged: no verdict, no history row — the
 * record is dropped and the answer is a full request to send at once (`RepeatRound`). So is a reply from
 * a node that rebooted and continued its list (`rebootedRepeat`): the request is sent again from IMA entry 0.
 */
export function decideQuoteReply(request: Extract<PullRequest, { kind: 'quote' }>, input: QuoteReplyInput, settings: PullSettings): PullDecision | RepeatRound {
  return finish(decideQuoteReplyStepwise(request, input, settings));
}

/**
 * `decideQuoteReply`, pausing between chunks of the boot log's events and of the IMA list's lines
 * (`Stepwise`): the same decision, for the verifier's pull loop, which judges a huge reply a slice at a
 * time between its other work.
 */
export function* decideQuoteReplyStepwise(request: Extract<PullRequest, { kind: 'quote' }>, input: QuoteReplyInput, settings: PullSettings): Stepwise<PullDecision | RepeatRound> {
  const rebooted = rebootedRepeat(request, input.reply);
  if (rebooted !== undefined) {
    return rebooted;
  }
  const plan = request.bootLog;
  const result = yield* evaluateQuoteStepwise({
    state: request.state,
    policies: input.policies,
    reply: input.reply as never,
    nonce: input.nonce,
    now: input.now,
    options: settings.engine,
    ...(input.signatureVerdict === undefined ? {} : { signatureVerdict: input.signatureVerdict }),
    ...(plan?.remembered === undefined ? {} : { rememberedBoot: plan.remembered }),
  });
  const fullPlan = plan === undefined || settings.bootLogs === undefined ? undefined : settleBootLog(plan, settings.bootLogs, input.reply, result);
  if (result.verdict === 'inconclusive') {
    return { repeat: { ...request, bootLog: fullPlan }, reason: result.reason };
  }
  if (tpmResetMidList(request, result.claims)) {
    const before = request.state.tpmClockInfo?.resetCount;
    return restartIma({ ...request, bootLog: fullPlan }, `the TPM was reset since the last passing quote (resetCount ${before}, now ${result.claims.quote?.clockInfo.resetCount}): the IMA list is asked for again from entry 0`);
  }
  const history: HistoryRow = {
    outcome: result.verdict,
    nonce: input.nonce,
    imaMlEntry: input.imaEntry,
    imaEntriesReceived: yield* countImaLines(input.reply),
    ...storedFailures(result.failures),
  };
  if (result.verdict === 'fail') {
    return { state: result.nextState, retries: 0, history, next: result.stopPolling ? { kind: 'stop' } : poll(settings) };
  }
  const next: PullNext = result.nextState.operationalState === S.PROVIDE_V ? { kind: 'deliver_v' } : poll(settings);
  return { state: result.nextState, retries: 0, history, next };
}

/**
 * A reply from a node that rebooted since the stored IMA progress, continuing the list at the entry
 * asked for (`continuesAcrossReboot`): those lines are another boot's, so the round is not judged and
 * the list is asked for again from entry 0, with the IMA state reset, at once. The repeated reply is
 * then replayed whole (entry 0 always restarts), so a reboot never passes a round with IMA unchecked,
 * as Keylime's verifier does (it resets and passes, and replays from 0 next round); the repeated round's
 * history row shows the restart (`ima_ml_entry` 0). A reply of the wrong shape is left to the engine.
 */
function rebootedRepeat(request: Extract<PullRequest, { kind: 'quote' }>, reply: unknown): RepeatRound | undefined {
  const shaped = checkQuoteReplyShape(reply);
  const state = request.state;
  if (isFailureEvent(shaped) || !continuesAcrossReboot(shaped, { boottime: state.boottime, nextImaEntry: state.ima.nextEntry })) {
    return undefined;
  }
  // A reboot reset the TPM too, so a remembered boot log cannot stand for the new boot: the log is asked for with it.
  const bootLog = request.bootLog === undefined ? undefined : askInFull(request.bootLog);
  return restartIma({ ...request, bootLog }, `the agent rebooted (boottime ${state.boottime}, now ${shaped.boottime ?? 0}): its IMA list is asked for again from entry 0`);
}

/**
 * Whether a round that continued the IMA list (from an entry other than 0) got a verified quote whose
 * TPM `resetCount` is above the last passing quote's: the TPM was reset — the node rebooted — since the
 * stored IMA progress, so the lines sent are another boot's. This is how a reboot shows when the agent
 * sends no `boottime` (the Rust agent, ironlime's), whose new list may already be as long as the entry
 * asked for: continuing the old replay would fail a healthy node with `ima.pcr_mismatch`. The count
 * is signed by the AK; a count that went back is the clock check's failure, not a reboot.
 */
function tpmResetMidList(request: Extract<PullRequest, { kind: 'quote' }>, claims: AttestationClaims): boolean {
  const before = request.state.tpmClockInfo?.resetCount;
  const now = claims.quote?.clockInfo.resetCount;
  return claims.ima !== null && claims.ima.firstEntry !== 0 && before !== undefined && now !== undefined && now > before;
}

/** The request sent again at once, asking the IMA list from entry 0 with the IMA state reset. */
function restartIma(request: Extract<PullRequest, { kind: 'quote' }>, reason: string): RepeatRound {
  return { repeat: { ...request, state: { ...request.state, ima: initialImaReplayState() }, imaEntry: 0 }, reason };
}

/**
 * V's delivery ended (`failure` undefined: delivered, or there is no V to deliver). `judged` is the
 * decision of the quote round that asked for it, when it did — its history row is kept, unless V's
 * refusal fails the agent in that round: a round stores one history row, here the FAIL, so the pass is
 * not counted either (`attestationCount` back to its value before the round). Keylime counts it — it
 * increments at the quote's pass — but here an agent's `pass` rows and its `attestation_count` always
 * agree, and the pass had no row to keep.
 */
export function decideVDelivery(
  request: { readonly state: AgentAttestationState; readonly retries: number },
  failure: TransportFailure | undefined,
  judged: PullDecision | undefined,
  settings: PullSettings,
): PullDecision {
  if (failure !== undefined) {
    const failed = decideTransportFailure(request, failure, undefined, settings, 'v');
    if (judged?.history?.outcome !== 'pass') {
      return failed;
    }
    if (failed.history?.outcome !== 'fail') {
      return { ...failed, history: judged.history };
    }
    return { ...failed, state: { ...failed.state, attestationCount: failed.state.attestationCount - 1 } };
  }
  const delivered = withOp(request.state, nextOperationalState(request.state.operationalState, { type: 'v_delivered' }));
  return { state: delivered, retries: 0, history: judged?.history, next: poll(settings) };
}

/**
 * The request got no usable answer. No answer or 408/500/599: retry after Keylime's delay until
 * `maxRetries`, then FAILED with `internal.verifier.not_reachable(_v)`. Any other status or a bad
 * reply: FAILED with `no_quote` / `no_v`. A round that overran its deadline is `no_answer` too.
 */
export function decideTransportFailure(
  position: PullPosition,
  failure: TransportFailure,
  request: { readonly nonce: string; readonly imaEntry: number } | undefined,
  settings: PullSettings,
  phase: 'quote' | 'v' = 'quote',
): PullDecision {
  const base = { nonce: request?.nonce ?? null, imaMlEntry: request?.imaEntry ?? null, imaEntriesReceived: null };
  const state = position.state;
  const retryable = failure.kind === 'no_answer' || (failure.kind === 'http_status' && RETRYABLE_STATUSES.has(failure.status));
  if (retryable) {
    const next = nextOperationalState(state.operationalState, { type: 'agent_unreachable', retries: position.retries, maxRetries: settings.maxRetries });
    if (next !== S.FAILED) {
      const retries = position.retries + 1;
      return {
        state: withOp(state, next),
        retries,
        history: { ...base, outcome: 'retry', failures: [] },
        next: { kind: 'poll', inSeconds: retryDelay(retries, settings.retryInterval, settings.exponentialBackoff) },
      };
    }
    const event = phase === 'v' ? InternalVerifierEvent.NOT_REACHABLE_V : InternalVerifierEvent.NOT_REACHABLE;
    return failWith(state, position.retries, settings, base, internalVerifierFailure(event, { message: failure.message, retries: position.retries }));
  }
  const failed = withOp(state, nextOperationalState(state.operationalState, { type: 'request_failed' }));
  const event = phase === 'v' ? InternalVerifierEvent.NO_V : InternalVerifierEvent.NO_QUOTE;
  return failWith(failed, position.retries, settings, base, internalVerifierFailure(event, { message: failure.message }));
}

/** What the verifier learnt from the agent's `GET /version` after the agent refused the API version. */
export interface VersionRenegotiation {
  /** The version the refused request used. */
  readonly current: string;
  /** The highest version both sides serve; undefined when there is none or `/version` did not answer. */
  readonly negotiated: string | undefined;
  /** True when `negotiated` is lower than `current`. */
  readonly downgrade: boolean;
}

/**
 * The agent refused the API version (spec §0.2, §6.2 step 2): ask again at once with the negotiated
 * version, unless there is none, it is the version just refused, or it is a downgrade of an agent that
 * has already attested (Keylime refuses that) — then FAILED with `internal.verifier.version_not_supported`.
 */
export function decideApiVersionRefusal(
  position: PullPosition,
  renegotiation: VersionRenegotiation,
  request: { readonly nonce: string; readonly imaEntry: number },
  settings: PullSettings,
): { readonly kind: 'retry'; readonly version: string } | { readonly kind: 'failed'; readonly decision: PullDecision } {
  const { current, negotiated, downgrade } = renegotiation;
  const usable = negotiated !== undefined && negotiated !== current && !(downgrade && position.state.attestationCount > 0);
  if (usable) return { kind: 'retry', version: negotiated };
  const reason =
    negotiated === undefined
      ? 'the agent names no API version the verifier speaks'
      : negotiated === current
        ? `the agent refused ${current}, the version it names itself`
        : `refusing to downgrade an attested agent from ${current} to ${negotiated}`;
  const failed = withOp(position.state, nextOperationalState(position.state.operationalState, { type: 'request_failed' }));
  const base = { nonce: request.nonce, imaMlEntry: request.imaEntry, imaEntriesReceived: null };
  return {
    kind: 'failed',
    decision: failWith(failed, position.retries, settings, base, internalVerifierFailure(InternalVerifierEvent.VERSION_NOT_SUPPORTED, { message: reason, current, negotiated: negotiated ?? null })),
  };
}

/** The round threw (a verifier bug or a stored value that no longer loads): Keylime's `internal.verifier.exception`, FAILED. */
export function decideInternalError(position: PullPosition, message: string, settings: PullSettings): PullDecision {
  const failed = withOp(position.state, nextOperationalState(position.state.operationalState, { type: 'request_failed' }));
  return failWith(failed, position.retries, settings, { nonce: null, imaMlEntry: null, imaEntriesReceived: null }, internalVerifierFailure(InternalVerifierEvent.EXCEPTION, { message }));
}

/** What a process does with an agent it takes over (restart, or another process's lapsed lease). */
export type TakeOver = { readonly kind: 'delete' } | { readonly kind: 'poll'; readonly state: AgentAttestationState };

/** TERMINATED agents are deleted; the others restart their cycle (Keylime: APPROVED_REACTIVATE_STATES → START). */
export function decideTakeOver(state: AgentAttestationState): TakeOver {
  if (state.operationalState === S.TERMINATED) {
    return { kind: 'delete' };
  }
  return { kind: 'poll', state: withOp(state, nextOperationalState(state.operationalState, { type: 'verifier_restart' })) };
}

/** The fields of an agent's stored state `PUT …/reactivate` sets; the rest of the row is kept. */
export type Reactivation = Pick<AgentAttestationState, 'operationalState' | 'severityLevel' | 'lastEventId' | 'lastSuccessfulAttestation'>;

/**
 * `PUT …/reactivate` of an agent in `before`: START, judged afresh — undefined for a TERMINATED agent
 * (its deletion goes on). Stricter than Keylime, which keeps the old maximum severity and the last
 * success: `last_event_id` names a failure of this run, not one the operator has already fixed, and a
 * success from before the reactivation (before a FAIL, often) does not make the agent trusted while
 * the first rounds after it go unanswered (GET_QUOTE_RETRY is a PASS state).
 */
export function decideReactivation(before: OperationalState): Reactivation | undefined {
  if (before === S.TERMINATED) {
    return undefined;
  }
  return { operationalState: nextOperationalState(before, { type: 'start' }), severityLevel: null, lastEventId: null, lastSuccessfulAttestation: 0 };
}

/** The agent's row says TERMINATED when a round is due: nothing to judge, polling stops (the loop deletes it). */
export function decideTerminated(position: PullPosition): PullDecision {
  return { state: position.state, retries: position.retries, history: undefined, next: { kind: 'stop' } };
}

function poll(settings: PullSettings): PullNext {
  return { kind: 'poll', inSeconds: settings.quoteInterval };
}

function failWith(
  state: AgentAttestationState,
  retries: number,
  settings: PullSettings,
  base: Omit<HistoryRow, 'outcome' | 'failures'>,
  event: FailureEvent,
): PullDecision {
  const failures = labelFailures(settings.severity, [event]);
  const record = recordFailures(state, failures, settings.severity);
  return {
    state: { ...withOp(state, S.FAILED), severityLevel: record.severityLevel, lastEventId: record.lastEventId },
    retries,
    history: { ...base, outcome: 'fail', ...storedFailures(failures) },
    next: { kind: 'stop' },
  };
}

/**
 * `state` moved to `operationalState` without a quote passing. Out of a failed state into a PASS one
 * (a silent agent retried after a recoverable failure: INVALID_QUOTE → GET_QUOTE_RETRY) the last
 * success is dropped: it came before the failure, vouches for nothing since, and would make the retry
 * state read as a trusted PASS.
 */
function withOp(state: AgentAttestationState, operationalState: OperationalState): AgentAttestationState {
  if (state.operationalState === operationalState) {
    return state;
  }
  const leavesFailure = attestationStatus(state) === 'FAIL' && attestationStatus({ operationalState }) === 'PASS';
  return { ...state, operationalState, ...(leavesFailure ? { lastSuccessfulAttestation: 0 } : {}) };
}
