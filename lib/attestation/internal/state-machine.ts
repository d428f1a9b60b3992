import { APPROVED_REACTIVATE_STATES, OperationalState } from '../operational-state.js';

/**
 * The pull loop's state machine (keylime/cloud_verifier_tornado.py `process_agent`; spec §6.2) as a
 * pure function, so the loop only performs I/O and persists what this returns.
 */

/** What happened to an agent, as seen by the polling loop or the admin API. */
export type OperationalEvent =
  /** Enrolment (pull mode) or `PUT …/reactivate`: start polling from scratch. */
  | { readonly type: 'start' }
  /** The loop picked up a START agent and sends its first quote request. */
  | { readonly type: 'poll' }
  /** The engine's verdict was pass; `provideV` when V must be (re)delivered (new or changed NK key). */
  | { readonly type: 'quote_passed'; readonly provideV: boolean }
  /** The engine's verdict was fail (the engine says separately whether polling stops). */
  | { readonly type: 'quote_failed' }
  /** HTTP 408/500/599 or no connection; `retries` = attempts already retried (Keylime `num_retries`). */
  | { readonly type: 'agent_unreachable'; readonly retries: number; readonly maxRetries: number }
  /** The retry timer fired: ask again. */
  | { readonly type: 'retry' }
  /** Any other non-200 answer from the agent (`internal.verifier.no_quote`): give up. */
  | { readonly type: 'request_failed' }
  /** `POST /keys/vkey` succeeded. */
  | { readonly type: 'v_delivered' }
  /** `PUT …/stop`. */
  | { readonly type: 'stop' }
  /** `DELETE` while the agent is being polled: the loop deletes it on its next tick. */
  | { readonly type: 'delete' }
  /** The verifier process restarted and is taking the agent over. */
  | { readonly type: 'verifier_restart' };

const S = OperationalState;

/**
 * The state after `event`. Total: an event that does not apply to the current state (a late reply for
 * an agent an operator stopped or deleted, say) leaves the state unchanged, so TERMINATED and
 * TENANT_FAILED stay put until an operator acts — the same outcome as Keylime, which re-reads the
 * stored state and drops the reply.
 *
 * - START → GET_QUOTE on `poll`; a pass (in any polled state) goes to PROVIDE_V when V must be
 *   delivered, else GET_QUOTE.
 * - A fail goes to INVALID_QUOTE. If the engine said polling continues (recoverable, below the maximum
 *   severity), a later pass returns the agent to GET_QUOTE.
 * - Unreachable: GET_QUOTE_RETRY / PROVIDE_V_RETRY until `retries >= maxRetries`, then FAILED.
 */
export function nextOperationalState(current: OperationalState, event: OperationalEvent): OperationalState {
  switch (event.type) {
    case 'start':
      return current === S.TERMINATED ? current : S.START;
    case 'delete':
      return S.TERMINATED;
    case 'stop':
      return current === S.TERMINATED ? current : S.TENANT_FAILED;
    case 'verifier_restart':
      return APPROVED_REACTIVATE_STATES.includes(current) ? S.START : current;
    case 'poll':
      return current === S.START ? S.GET_QUOTE : current;
    case 'quote_passed':
      if (isPolled(current)) {
        return event.provideV ? S.PROVIDE_V : S.GET_QUOTE;
      }
      return current;
    case 'quote_failed':
      return isPolled(current) ? S.INVALID_QUOTE : current;
    case 'agent_unreachable':
      return unreachable(current, event.retries, event.maxRetries);
    case 'retry':
      if (current === S.GET_QUOTE_RETRY) {
        return S.GET_QUOTE;
      }
      return current === S.PROVIDE_V_RETRY ? S.PROVIDE_V : current;
    case 'request_failed':
      return isPolled(current) ? S.FAILED : current;
    case 'v_delivered':
      return current === S.PROVIDE_V || current === S.PROVIDE_V_RETRY ? S.GET_QUOTE : current;
  }
}

/** States of an agent being polled (INVALID_QUOTE too: polling may go on after a recoverable failure). */
function isPolled(state: OperationalState): boolean {
  return isDeliveringV(state) || state === S.GET_QUOTE || state === S.GET_QUOTE_RETRY || state === S.INVALID_QUOTE;
}

function isDeliveringV(state: OperationalState): boolean {
  return state === S.PROVIDE_V || state === S.PROVIDE_V_RETRY;
}

function unreachable(current: OperationalState, retries: number, maxRetries: number): OperationalState {
  const exhausted = retries >= maxRetries;
  if (isDeliveringV(current)) {
    return exhausted ? S.FAILED : S.PROVIDE_V_RETRY;
  }
  if (isPolled(current)) {
    return exhausted ? S.FAILED : S.GET_QUOTE_RETRY;
  }
  return current;
}

/**
 * Seconds to wait before retry number `n` (1-based) — Keylime's `retry.retry_time`: `retryInterval ** n`
 * with exponential backoff when the base is above 1, otherwise `|retryInterval|`.
 */
export function retryDelay(n: number, retryInterval: number, exponential: boolean): number {
  if (exponential && retryInterval > 1) {
    return retryInterval ** n;
  }
  return Math.abs(retryInterval);
}
