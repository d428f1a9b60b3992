import type { AgentAttestationState } from './agent-state.js';
import type { HistoryRow } from './history-row.js';
import { OPERATOR_STOPPED_STATES, REVOKED_STATES, type OperationalState } from './operational-state.js';

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
  return history?.outcome === 'fail' && REVOKED_STATES.includes(state.operationalState);
}
