import { attestationStatus, isOperationalState, OperationalState, operationalStateLabel } from '../../lib/attestation/operational-state.js';

/**
 * Turns the verifier's view of an agent (`GET /v2.x/agents/{id}`, spec §4.2) into the driver's verdict.
 * Pure: the polling loop around it lives in `status-wait.ts`.
 */

/** The fields of the verifier's status reply the verdict reads (all optional: real Keylime versions differ). */
export interface VerifierAgentView {
  /** Spec §6.1 code; null for a push agent. */
  readonly operationalState: number | null;
  /** Successful attestations since enrolment. */
  readonly attestationCount: number;
  /** `PASS`, `FAIL`, `PENDING`, `TIMEOUT` (API ≥ 2.5). */
  readonly attestationStatus: string | undefined;
  readonly lastEventId: string | null;
  readonly severityLevel: number | null;
  /** Event ids of failures the verifier keeps beyond `last_event_id`, when it exposes them. */
  readonly failureEventIds: readonly string[];
  /** Human-readable failure contexts the verifier exposes, if any. */
  readonly failureReasons: readonly string[];
}

export type StatusVerdict =
  | { readonly kind: 'pass' }
  | { readonly kind: 'pending'; readonly why: string }
  | { readonly kind: 'fail'; readonly reasons: readonly string[]; readonly eventIds: readonly string[] };

/** States of a healthy polling loop (GET_QUOTE, PROVIDE_V): the last round got a good quote. */
const GOOD_STATES: ReadonlySet<number> = new Set([OperationalState.GET_QUOTE, OperationalState.PROVIDE_V]);

/**
 * The verdict on one status reply:
 *
 * - `fail` when the verifier marked the agent failed (states 7, 9, 10, or `attestation_status` FAIL or
 *   TIMEOUT for a push agent), or it is being removed (8); reasons name the state, `last_event_id` and
 *   severity, plus any failure history the verifier exposes.
 * - `pass` only when the agent has passed at least one attestation since it was enrolled
 *   (`attestation_count` ≥ 1) and the verifier's loop is in good standing (3 or 5; a push agent: PASS).
 * - `pending` otherwise: not yet quoted (0, 1, 2, or 3 with no success yet) or retrying an unreachable
 *   agent (4, 6) — the caller waits.
 */
export function judgeVerifierStatus(view: VerifierAgentView): StatusVerdict {
  const state = view.operationalState;
  const eventIds = unique([...(view.lastEventId === null ? [] : [view.lastEventId]), ...view.failureEventIds]);
  const failed = (headline: string): StatusVerdict => ({
    kind: 'fail',
    reasons: unique([headline, ...view.failureReasons]),
    eventIds,
  });
  if (state === null) {
    if (view.attestationStatus === 'FAIL') {
      return failed(`the verifier reports attestation failed${detail(view)}`);
    }
    if (view.attestationStatus === 'TIMEOUT') {
      return failed('the agent stopped sending evidence (verifier status TIMEOUT)');
    }
    return view.attestationStatus === 'PASS' && view.attestationCount > 0
      ? { kind: 'pass' }
      : { kind: 'pending', why: `push agent status ${view.attestationStatus ?? 'unknown'}` };
  }
  // FAILED, INVALID_QUOTE, TENANT_FAILED: the verifier has stopped trusting the agent (status FAIL).
  if (isOperationalState(state) && attestationStatus({ operationalState: state }) === 'FAIL') {
    return failed(`the verifier marked the agent "${stateName(state)}"${detail(view)}`);
  }
  if (state === OperationalState.TERMINATED) {
    return failed('the agent is being removed from the verifier (state "Terminated")');
  }
  if (GOOD_STATES.has(state) && view.attestationCount > 0) {
    return { kind: 'pass' };
  }
  return { kind: 'pending', why: `state "${stateName(state)}", ${view.attestationCount} successful attestation(s)` };
}

/** Keylime's label of a state code (`common/states.py`), for messages. */
export function stateName(state: number): string {
  return isOperationalState(state) ? operationalStateLabel(state) : `unknown state ${state}`;
}

function detail(view: VerifierAgentView): string {
  const parts = [
    ...(view.lastEventId === null ? [] : [`last event ${view.lastEventId}`]),
    ...(view.severityLevel === null ? [] : [`severity level ${view.severityLevel}`]),
  ];
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}
