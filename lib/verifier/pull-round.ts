import type { AgentAttestationState } from '../attestation/agent-state.js';
import { evaluateQuote, type EvaluateQuoteOptions } from '../attestation/evaluate-quote.js';
import { internalVerifierFailure, InternalVerifierEvent, type Failure } from '../attestation/failure.js';
import { recordFailures } from '../attestation/failure-record.js';
import { OperationalState } from '../attestation/operational-state.js';
import { labelFailures, type SeverityPolicy } from '../attestation/severity.js';
import { nextOperationalState, retryDelay } from '../attestation/state-machine.js';
import { IronlimeError } from '../../interfaces/errors.js';
import { KeylimeHttpError, ServiceUnreachableError } from '../http/client-errors.js';
import type { HistoryEntry, StoredFailure } from './verifier-agent-record.js';
import { freshNonce } from './nonce.js';
import type { PolledAgent } from './polled-agent.js';
import { wrapVKey } from './v-key.js';

export interface RoundSettings {
  readonly quoteInterval: number;
  readonly retryInterval: number;
  readonly maxRetries: number;
  readonly exponentialBackoff: boolean;
  readonly severity: SeverityPolicy;
  readonly engine: EvaluateQuoteOptions;
}

/** What a round decided: the state to store, the history row, and when (if ever) to come back. */
export interface RoundOutcome {
  readonly state: AgentAttestationState;
  /** Undefined for a round that only (re)delivered V successfully: nothing was judged. */
  readonly history: HistoryEntry | undefined;
  /** Seconds until the next round, or undefined: polling stops. */
  readonly nextRoundIn: number | undefined;
}

const S = OperationalState;

/** Keylime retries these statuses (408 timeout, 500, 599 = tornado's connection failure; spec §6.2 step 2). */
const RETRYABLE_STATUSES = new Set([408, 500, 599]);

/**
 * One pull round for `agent` (spec §6.2): START → GET_QUOTE, then either the quote request (fresh
 * 20-character nonce, the stored `ima_ml_entry`, `partial=1` once the NK key is cached and this is
 * not a retry) judged by `evaluateQuote`, or — in PROVIDE_V(_RETRY) — V's delivery. A pass whose NK
 * key is new delivers V at once (when the tenant gave one) so the round still ends in one write.
 * Unreachable agents are retried `maxRetries` times with Keylime's back-off, then FAILED with
 * `internal.verifier.not_reachable`; other HTTP errors are FAILED with `no_quote`. Mutates only
 * `agent.retries`; the caller persists `state` and applies `nextRoundIn`.
 */
export async function runPullRound(agent: PolledAgent, settings: RoundSettings): Promise<RoundOutcome> {
  let state = agent.state;
  const fromStart = state.operationalState === S.START;
  state = withOp(state, nextOperationalState(state.operationalState, { type: 'poll' }));
  state = withOp(state, nextOperationalState(state.operationalState, { type: 'retry' }));
  if (state.operationalState === S.PROVIDE_V) {
    return deliverV(agent, state, settings, undefined);
  }
  const nonce = freshNonce();
  const imaEntry = state.ima.nextEntry;
  const partial = state.publicKey !== null && agent.retries === 0 && !fromStart;
  let reply: unknown;
  try {
    reply = await agent.connection.integrityQuote({ nonce, mask: agent.mask, partial, imaEntry });
  } catch (error) {
    return unreachableOrFailed(agent, state, settings, error, { nonce, imaEntry }, InternalVerifierEvent.NOT_REACHABLE, InternalVerifierEvent.NO_QUOTE);
  }
  agent.retries = 0;
  const result = evaluateQuote({
    state,
    policies: agent.policies,
    reply: reply as never,
    nonce,
    now: Math.floor(Date.now() / 1000),
    options: settings.engine,
  });
  const history: HistoryEntry = {
    outcome: result.verdict,
    nonce,
    imaMlEntry: imaEntry,
    imaEntriesReceived: countImaLines(reply),
    failures: result.failures.map(storedFailure),
  };
  if (result.verdict === 'fail') {
    return { state: result.nextState, history, nextRoundIn: result.stopPolling ? undefined : settings.quoteInterval };
  }
  if (result.nextState.operationalState === S.PROVIDE_V) {
    return deliverV(agent, result.nextState, settings, history);
  }
  return { state: result.nextState, history, nextRoundIn: settings.quoteInterval };
}

/** PROVIDE_V: wraps V under the cached NK key and posts it (no V enrolled: nothing to deliver). */
async function deliverV(
  agent: PolledAgent,
  state: AgentAttestationState,
  settings: RoundSettings,
  history: HistoryEntry | undefined,
): Promise<RoundOutcome> {
  const v = agent.enrolment.v;
  if (v !== null && state.publicKey !== null) {
    try {
      await agent.connection.sendVKey(wrapVKey(v, state.publicKey));
    } catch (error) {
      const outcome = unreachableOrFailed(agent, state, settings, error, undefined, InternalVerifierEvent.NOT_REACHABLE_V, InternalVerifierEvent.NO_V);
      return history === undefined || outcome.history?.outcome === 'fail' ? outcome : { ...outcome, history };
    }
  }
  agent.retries = 0;
  const delivered = withOp(state, nextOperationalState(state.operationalState, { type: 'v_delivered' }));
  return { state: delivered, history, nextRoundIn: settings.quoteInterval };
}

/**
 * An agent that did not answer (connection failure, 408/500/599): retry after Keylime's delay until
 * `maxRetries`, then FAILED with `notReachable`. Any other error (another HTTP status, a reply that is
 * no envelope, a V that cannot be wrapped) is FAILED with `otherFailure`.
 */
function unreachableOrFailed(
  agent: PolledAgent,
  state: AgentAttestationState,
  settings: RoundSettings,
  error: unknown,
  request: { nonce: string; imaEntry: number } | undefined,
  notReachable: InternalVerifierEvent,
  otherFailure: InternalVerifierEvent,
): RoundOutcome {
  const retryable = error instanceof ServiceUnreachableError || (error instanceof KeylimeHttpError && RETRYABLE_STATUSES.has(error.remoteHttpStatus));
  const base = { nonce: request?.nonce ?? null, imaMlEntry: request?.imaEntry ?? null, imaEntriesReceived: null };
  if (retryable) {
    const next = nextOperationalState(state.operationalState, { type: 'agent_unreachable', retries: agent.retries, maxRetries: settings.maxRetries });
    if (next !== S.FAILED) {
      agent.retries += 1;
      return {
        state: withOp(state, next),
        history: { ...base, outcome: 'retry', failures: [] },
        nextRoundIn: retryDelay(agent.retries, settings.retryInterval, settings.exponentialBackoff),
      };
    }
    return failWith(state, settings, base, internalVerifierFailure(notReachable, { message: describe(error), retries: agent.retries }));
  }
  const failed = withOp(state, nextOperationalState(state.operationalState, { type: 'request_failed' }));
  return failWith(failed, settings, base, internalVerifierFailure(otherFailure, { message: describe(error) }));
}

function failWith(
  state: AgentAttestationState,
  settings: RoundSettings,
  base: Omit<HistoryEntry, 'outcome' | 'failures'>,
  event: ReturnType<typeof internalVerifierFailure>,
): RoundOutcome {
  const failures = labelFailures(settings.severity, [event]);
  const record = recordFailures(state, failures, settings.severity);
  return {
    state: { ...withOp(state, S.FAILED), severityLevel: record.severityLevel, lastEventId: record.lastEventId },
    history: { ...base, outcome: 'fail', failures: failures.map(storedFailure) },
    nextRoundIn: undefined,
  };
}

function withOp(state: AgentAttestationState, operationalState: OperationalState): AgentAttestationState {
  return state.operationalState === operationalState ? state : { ...state, operationalState };
}

export function storedFailure(failure: Failure): StoredFailure {
  return { event_id: failure.eventId, severity_label: failure.severityLabel, context: failure.context, recoverable: failure.recoverable };
}

function countImaLines(reply: unknown): number | null {
  const list = (reply as { ima_measurement_list?: unknown } | null)?.ima_measurement_list;
  if (typeof list !== 'string') {
    return null;
  }
  let lines = 0;
  for (const line of list.split('\n')) {
    if (line.trim() !== '') {
      lines += 1;
    }
  }
  return lines;
}

function describe(error: unknown): string {
  return error instanceof IronlimeError || error instanceof Error ? error.message : String(error);
}
