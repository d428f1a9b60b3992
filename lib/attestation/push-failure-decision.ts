import type { AgentAttestationState } from './agent-state.js';
import { pushAttestationWaitSeconds } from './freshness.js';
import { internalVerifierFailure, InternalVerifierEvent, type FailureEvent } from './internal/failure.js';
import { recordFailures } from './internal/failure-record.js';
import type { HistoryRow } from './history-row.js';
import { storedFailures } from './stored-failures.js';
import { OperationalState } from './operational-state.js';
import { PUSH_AGENT_BACKOFF_CAP_MS, PUSH_AGENT_WAIT_JITTER } from './push-agent-waits.js';
import { labelFailures, type SeverityPolicy } from './severity.js';

/**
 * The push model's failures that no evidence decides (keylime-protocol §10.5): an agent that went
 * silent, and evidence taken whose verdict could not be stored. Pure, as `push-decision.ts`.
 */

/**
 * A push agent sent nothing for `timeoutSeconds` (Keylime: `quote_interval × 5`, spec §10.5): it is
 * FAILED with `internal.verifier.not_reachable` — never left pending — and stays failed until enrolled
 * again. Before its first attestation the clock runs from the enrolment and the agent also gets
 * `firstAttestationGraceSeconds` (the time a session challenge may be answered): its first session
 * costs the verifier a 600 000-round PBKDF2 hash, and a fleet starting at once queues for those, so
 * the bare timeout failed healthy nodes at start-up. Undefined while it is not late, or when it is not
 * attesting.
 *
 * `outage` is the latest time the verifier could not use its database (seconds since the epoch;
 * `to` is now while it lasts): the agent's requests were answered 500 and nothing of them stored, so
 * silence it overlaps is the verifier's, not the agent's (`verifierOutageDeadline`).
 */
export function decidePushSilence(
  state: AgentAttestationState,
  enrolledAt: number,
  now: number,
  timing: PushSilenceTiming,
  severity: SeverityPolicy,
  outage?: VerifierOutage,
): { readonly state: AgentAttestationState; readonly history: HistoryRow } | undefined {
  const allowance = silenceAllowance(state, enrolledAt, timing);
  if (allowance === undefined) return undefined;
  const { attested, last, timeoutSeconds } = allowance;
  let deadline = last + timeoutSeconds;
  // The verifier became unable to store before the agent was late, and the agent has not attested since it recovered.
  if (outage !== undefined && outage.from < deadline && last <= outage.to) {
    deadline = Math.max(deadline, Math.min(verifierOutageDeadline(outage, timing), last + outageExcuseLimit(outage, timing, attested)));
  }
  if (now < deadline) {
    return undefined;
  }
  const event = internalVerifierFailure(InternalVerifierEvent.NOT_REACHABLE, { message: `no attestation from the push agent for ${Math.round(now - last)} s`, timeout: timeoutSeconds });
  return failedBy(state, event, null, severity);
}

/**
 * When a push agent's silence fails it unless the verifier's own silence excuses it (Unix seconds): its
 * last attestation + the timeout, or before its first one its enrolment + the timeout + the grace.
 * Undefined when it is not attesting (failed, stopped): no silence of it is judged.
 */
export function pushSilenceDeadline(state: AgentAttestationState, enrolledAt: number, timing: PushSilenceTiming): number | undefined {
  const allowance = silenceAllowance(state, enrolledAt, timing);
  return allowance === undefined ? undefined : allowance.last + allowance.timeoutSeconds;
}

/**
 * What a push agent's silence is counted from (`last`: its last attestation, or its enrolment before its
 * first) and for how long (the timeout, plus the grace before the first); undefined when it is not
 * attesting. The one source of the sweep's deadline and of the session-hash gate's order.
 */
function silenceAllowance(
  state: AgentAttestationState,
  enrolledAt: number,
  timing: PushSilenceTiming,
): { readonly attested: boolean; readonly last: number; readonly timeoutSeconds: number } | undefined {
  if (state.operationalState !== OperationalState.GET_QUOTE && state.operationalState !== OperationalState.START) {
    return undefined;
  }
  const attested = state.lastReceivedQuote >= enrolledAt;
  return {
    attested,
    last: attested ? state.lastReceivedQuote : enrolledAt,
    timeoutSeconds: timing.timeoutSeconds + (attested ? 0 : timing.firstAttestationGraceSeconds),
  };
}

export interface PushSilenceTiming {
  readonly timeoutSeconds: number;
  readonly firstAttestationGraceSeconds: number;
}

/**
 * When the verifier could not use its database (seconds since the epoch): from its first failure to
 * the first statement answered after it, failures close together counted as one; `downSeconds` is the
 * time within it when no statement was answered.
 */
export interface VerifierOutage {
  readonly from: number;
  readonly to: number;
  readonly downSeconds: number;
}

/**
 * The verifier's own silence the sweep judges by: its latest database outage and the latest time its
 * session hashes were backed up (`busy`: sessions refused 503 `verifier_busy` until no hash waited, as
 * a fleet enrolled or rebooted at once, or a verifier restarted, needs one 600 000-round PBKDF2 per
 * agent). Both as one when they lie within `mergeSeconds` of each other, else the later. A busy time
 * counts as down for at most `busyCapSeconds` (the sweep gives a few hashes for every push agent
 * attesting to the verifier, `PushLiveness`): a backlog kept up by agents opening sessions over and over
 * (an enrolled node can prove its own TPM) then stops widening the excuse of a stopped agent (`outageExcuseLimit`).
 */
export function verifierSilence(
  database: VerifierOutage | undefined,
  busy: VerifierOutage | undefined,
  mergeSeconds: number,
  busyCapSeconds: number,
): VerifierOutage | undefined {
  const hashing = busy === undefined ? undefined : { ...busy, downSeconds: Math.min(busy.downSeconds, Math.max(0, busyCapSeconds)) };
  if (database === undefined || hashing === undefined) return database ?? hashing;
  const [first, second] = database.from <= hashing.from ? [database, hashing] : [hashing, database];
  if (second.from - first.to > mergeSeconds) return second.to >= first.to ? second : first;
  return { from: first.from, to: Math.max(first.to, second.to), downSeconds: first.downSeconds + second.downSeconds };
}

/**
 * How much longer than its doubling back-off a push agent may wait: ours draws each failure wait from
 * 0.75 … 1.25 times it, so that a fleet does not come back in step (`PUSH_AGENT_WAIT_JITTER`).
 */
const AGENT_BACKOFF_SPREAD = 1 + PUSH_AGENT_WAIT_JITTER;
/**
 * The longest wait between two attempts of a push agent that backs off: Keylime's agent default, also
 * ours (`PUSH_AGENT_BACKOFF_CAP_MS`), which ours may draw up to 25 % above.
 */
const AGENT_BACKOFF_CAP_SECONDS = (PUSH_AGENT_BACKOFF_CAP_MS / 1000) * AGENT_BACKOFF_SPREAD;

/**
 * The earliest a push agent whose silence overlapped `outage` may be failed for it: the timeout,
 * counted from the outage's end, plus what the agents need to come back. An agent that backs off by
 * doubling its wait, as Keylime's and ours do, may next try about as long after the end as it had been
 * failing (ours up to 25 % longer), up to its cap; and a fleet whose session tokens lapsed meanwhile queues for new sessions as
 * at start-up (`firstAttestationGraceSeconds`). An agent that truly stopped is failed then.
 */
export function verifierOutageDeadline(outage: VerifierOutage, timing: PushSilenceTiming): number {
  const backoff = Math.min((outage.to - outage.from) * AGENT_BACKOFF_SPREAD, AGENT_BACKOFF_CAP_SECONDS);
  return outage.to + timing.timeoutSeconds + timing.firstAttestationGraceSeconds + backoff;
}

/**
 * The longest an outage may excuse an agent's silence, counted from its last attestation (or its
 * enrolment, `attested` false): twice its timeout, the way back of `verifierOutageDeadline`, and the
 * time the database was really down. Failures close together count as one outage, so a database that
 * fails a statement now and then, while others are answered, would otherwise push an outage's end,
 * and with it a stopped agent's failure, back for as long as it goes on.
 */
export function outageExcuseLimit(outage: VerifierOutage, timing: PushSilenceTiming, attested: boolean): number {
  const timeoutSeconds = timing.timeoutSeconds + (attested ? 0 : timing.firstAttestationGraceSeconds);
  return 2 * timeoutSeconds + timing.firstAttestationGraceSeconds + AGENT_BACKOFF_CAP_SECONDS + outage.downSeconds;
}

/**
 * Evidence was received but could not be judged (the engine threw: a policy that no longer loads), or
 * was taken and its verdict's write failed (the database, a verdict refused over and over): FAILED with
 * `internal.verifier.exception`, as a pull round that throws (`decideInternalError`), so evidence nobody
 * judged never leaves the agent trusted on its last verdict; or phase 1 found the enrolment unloadable
 * (no attestation: `challenge` null).
 */
export function decidePushException(
  state: AgentAttestationState,
  challenge: string | null,
  message: string,
  severity: SeverityPolicy,
): { readonly state: AgentAttestationState; readonly history: HistoryRow } {
  return failedBy(state, internalVerifierFailure(InternalVerifierEvent.EXCEPTION, { message }), challenge, severity);
}

/**
 * Phase 1 refused because the agent offers no log its policy needs (`PushRefusal.missingLog`): FAILED
 * with `internal.verifier.no_quote`, as a pull agent that cannot answer with the evidence asked for,
 * so the agent is not left on its last PASS until its silence timeout names it unreachable. Not while
 * its last evidence (or its enrolment) is under two of its waits old (`pushAttestationWaitSeconds`): an agent offers the logs it
 * could read, and one read that failed on the node (no file descriptor free, say) would otherwise fail
 * it for good over a phase 1 its next attempt gets right; refused, it tries again. Undefined then, and
 * when it is not attesting (already failed, stopped). Times in Unix seconds.
 */
export function decidePushMissingLog(
  state: AgentAttestationState,
  timing: { readonly enrolledAt: number; readonly now: number; readonly quoteInterval: number },
  message: string,
  severity: SeverityPolicy,
): { readonly state: AgentAttestationState; readonly history: HistoryRow } | undefined {
  if (state.operationalState !== OperationalState.GET_QUOTE && state.operationalState !== OperationalState.START) {
    return undefined;
  }
  const last = Math.max(state.lastReceivedQuote, timing.enrolledAt);
  // Two of the agent's waits (`quoteInterval` rounded up, at least 1 s: below a second it attests less
  // often than that); the stored time is in whole seconds, up to one before the evidence came.
  if (timing.now - last < 2 * pushAttestationWaitSeconds(timing.quoteInterval) + 1) {
    return undefined;
  }
  return failedBy(state, internalVerifierFailure(InternalVerifierEvent.NO_QUOTE, { message }), null, severity);
}

/** `state` FAILED by the verifier's own `event`, with its history row. */
function failedBy(state: AgentAttestationState, event: FailureEvent, nonce: string | null, severity: SeverityPolicy): { readonly state: AgentAttestationState; readonly history: HistoryRow } {
  const failures = labelFailures(severity, [event]);
  const record = recordFailures(state, failures, severity);
  return {
    state: { ...state, operationalState: OperationalState.FAILED, severityLevel: record.severityLevel, lastEventId: record.lastEventId },
    history: { outcome: 'fail', nonce, imaMlEntry: null, imaEntriesReceived: null, ...storedFailures(failures) },
  };
}
