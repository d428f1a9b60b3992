/**
 * The verifier's per-agent `operational_state` codes and their labels, exactly as Keylime numbers them
 * (keylime/common/states.py; spec §6.1), plus the PASS/FAIL/PENDING summary the status endpoint shows
 * (spec §4.2, `attestation_status`).
 */

/** Keylime's operational state codes (spec §6.1). The numbers are on the wire; never renumber them. */
export const OperationalState = {
  REGISTERED: 0,
  START: 1,
  SAVED: 2,
  GET_QUOTE: 3,
  GET_QUOTE_RETRY: 4,
  PROVIDE_V: 5,
  PROVIDE_V_RETRY: 6,
  FAILED: 7,
  TERMINATED: 8,
  INVALID_QUOTE: 9,
  TENANT_FAILED: 10,
} as const;

export type OperationalState = (typeof OperationalState)[keyof typeof OperationalState];

/** The `repr` strings Keylime shows for each state (states.py `str_mapping`). */
export const OPERATIONAL_STATE_LABELS: Readonly<Record<OperationalState, string>> = Object.freeze({
  0: 'Registered',
  1: 'Start',
  2: 'Saved',
  3: 'Get Quote',
  4: 'Get Quote (retry)',
  5: 'Provide V',
  6: 'Provide V (retry)',
  7: 'Failed',
  8: 'Terminated',
  9: 'Invalid Quote',
  10: 'Tenant Quote Failed',
});

/** States a restarted verifier puts back to START and polls again (states.py `APPROVED_REACTIVATE_STATES`). */
export const APPROVED_REACTIVATE_STATES: readonly OperationalState[] = Object.freeze([
  OperationalState.START,
  OperationalState.GET_QUOTE,
  OperationalState.GET_QUOTE_RETRY,
  OperationalState.PROVIDE_V,
  OperationalState.PROVIDE_V_RETRY,
]);

/** The states a verdict fails its agent into; Keylime announces revocation on these. */
export const REVOKED_STATES: readonly OperationalState[] = Object.freeze([OperationalState.FAILED, OperationalState.INVALID_QUOTE]);

/**
 * The states an operator's stop (TENANT_FAILED) or delete (TERMINATED) leaves: no round is stored over
 * them; only a verdict that fails the agent (`recordedOverOperatorStop`) still has its failure recorded.
 */
export const OPERATOR_STOPPED_STATES: readonly OperationalState[] = Object.freeze([OperationalState.TENANT_FAILED, OperationalState.TERMINATED]);

/** The state an operator's stop or delete sets (`OPERATOR_STOPPED_STATES`). */
export type OperatorStop = typeof OperationalState.TENANT_FAILED | typeof OperationalState.TERMINATED;

/** States in which the agent failed (status FAIL); the polling loop has stopped or is about to. */
const FAILED_STATES: readonly OperationalState[] = [
  OperationalState.FAILED,
  OperationalState.INVALID_QUOTE,
  OperationalState.TENANT_FAILED,
];

/** States in which the agent has passed a quote or is being polled after one (status PASS). */
const PASSING_STATES: readonly OperationalState[] = [
  OperationalState.GET_QUOTE,
  OperationalState.GET_QUOTE_RETRY,
  OperationalState.PROVIDE_V,
  OperationalState.PROVIDE_V_RETRY,
];

export type AttestationStatus = 'PASS' | 'FAIL' | 'PENDING';

/** True when `value` is one of Keylime's eleven state codes. */
export function isOperationalState(value: unknown): value is OperationalState {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 10;
}

/** The label of a state code ("Get Quote"), for logs and the status endpoint. */
export function operationalStateLabel(state: OperationalState): string {
  return OPERATIONAL_STATE_LABELS[state];
}

/**
 * The pull-mode `attestation_status` of spec §4.2 (verifier `_get_attestation_status`): PASS in states
 * 3–6, FAIL in 7, 9 and 10, PENDING otherwise (not yet polled, saved, or being deleted).
 */
export function attestationStatus(state: { operationalState: OperationalState }): AttestationStatus {
  if (FAILED_STATES.includes(state.operationalState)) {
    return 'FAIL';
  }
  if (PASSING_STATES.includes(state.operationalState)) {
    return 'PASS';
  }
  return 'PENDING';
}
