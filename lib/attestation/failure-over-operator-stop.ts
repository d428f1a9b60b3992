import type { AgentAttestationState } from './agent-state.js';
import type { HistoryRow } from './history-row.js';
import { OperationalState } from './operational-state.js';

/** The states a verdict fails its agent into (Keylime announces revocation on these). */
const FAILING_STATES: readonly number[] = [OperationalState.FAILED, OperationalState.INVALID_QUOTE];

/**
 * Whether a verdict is recorded even when an operator stopped (TENANT_FAILED) or deleted (TERMINATED)
 * its agent while it waited to be stored (a batch window, a write retried): a verdict that fails the
 * agent — FAILED or INVALID_QUOTE, with its `fail` history row and the failures found — is the evidence
 * of what was detected, and its revocation must still reach the brokers and the other agents, whatever
 * the operator did meanwhile. Of such a verdict only the history row, its audit record and the
 * announcement are kept: the agent keeps the operator's state and is not polled again. Any other
 * verdict (a pass, a retry, nothing judged) meeting a stopped or deleted agent is dropped.
 */
export function recordedOverOperatorStop(state: Pick<AgentAttestationState, 'operationalState'>, history: HistoryRow | undefined): boolean {
  return history?.outcome === 'fail' && FAILING_STATES.includes(state.operationalState);
}
