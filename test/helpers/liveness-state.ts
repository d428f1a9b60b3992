import type { LivenessState } from '../../lib/attestation/liveness-decision.js';
import type { LivenessChange, LivenessRepository } from '../../lib/verifier/liveness/liveness-repository.js';

/** A caller that sees every tenant's nodes (a client certificate). */
export const seesEveryTenant = (): boolean => true;

/** Stores `state` for the node's current enrolment, as a check deciding exactly that would. */
export async function storeLivenessState(repository: LivenessRepository, agentId: string, state: LivenessState): Promise<LivenessChange | undefined> {
  const record = await repository.find(agentId);
  if (record === undefined) throw new Error(`${agentId} is not enrolled for liveness`);
  return repository.saveState(agentId, record.enrolment, () => state);
}
