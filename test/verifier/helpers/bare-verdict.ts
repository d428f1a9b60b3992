import { initialAgentState } from '../../../lib/attestation/agent-state.js';
import { OperationalState } from '../../../lib/attestation/operational-state.js';
import type { Verdict } from '../../../lib/verifier/verdict-store.js';

/**
 * A verdict with nothing judged in it: the agent left in `state` with `attestationCount`, and a
 * history row that passes, or fails with no failure listed when `state` is FAILED. What the write
 * path stores, without a round to decide it.
 */
export function bareVerdict(state: OperationalState, attestationCount: number, imaMlEntry: number | null = null): Verdict & { readonly history: NonNullable<Verdict['history']> } {
  return {
    state: { ...initialAgentState(state), attestationCount },
    history: { outcome: state === OperationalState.FAILED ? 'fail' : 'pass', nonce: null, imaMlEntry, imaEntriesReceived: null, failures: [] },
  };
}
