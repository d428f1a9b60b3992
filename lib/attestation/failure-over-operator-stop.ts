import type { AgentAttestationState } from './agent-state.js';
import type { HistoryRow } from './history-row.js';
import { OperationalState } from './operational-state.js';

/** The states a verdict fails its agent into (Keylime announces revocation on these). */
const FAILING_STATES: readonly number[] = [OperationalState.FAILED, OperationalState.INVALID_QUOTE];

/** The states an operator's stop (TENANT_FAILED) or delete (TERMINATED) leaves. */
const OPERATOR_STOPPED_STATES: readonly number[] = [OperationalState.TENANT_FAILED, OperationalState.TERMINATED];

/**
 * Whether a verdict is recorded even when an operator stopped (TENANT_FAILED) or deleted (TERMINATED)
 * its agent while it waited to be stored (a batch window, a write retried): a verdict that fails the
 * agent — FAILED or INVALID_QUOTE, with its `fail` history row and the failures found — is the evidence
 * of what was detected, and its revocation must still reach the brokers and the other agents, whatever
 * the operator did meanwhile. Of such a verdict only the history row, its audit record and the
 * announcement are kept: the agent keeps the operator's state and is not polled again. Any other
 * verdict (a pass, a retry, nothing judged) meeting a stopped or deleted agent is dropped, and so is
 * one decided from a row already stopped (`decidedFrom`: a push agent goes on sending evidence after
 * its stop; its failures are not recorded, nor announced again and again, over the operator's stop).
 */
export function recordedOverOperatorStop(
  state: Pick<AgentAttestationState, 'operationalState'>,
  history: HistoryRow | undefined,
  decidedFrom?: OperationalState,
): boolean {
  if (decidedFrom !== undefined && OPERATOR_STOPPED_STATES.includes(decidedFrom)) return false;
  return history?.outcome === 'fail' && FAILING_STATES.includes(state.operationalState);
}
