import { RequestValidationError } from '../http/http-errors.js';

/** The audit stream of admin actions on no single agent (policies, tokens): every tenant's. */
export const FLEET_STREAM = 'fleet';

/**
 * Refuses to enrol a node under an id that names a shared audit stream: a node's page shows its
 * id's stream, so a node named `fleet` would show every tenant's policy and token actions.
 * @throws RequestValidationError (400)
 */
export function refuseReservedAgentId(agentId: string): void {
  if (agentId === FLEET_STREAM) {
    throw new RequestValidationError('params.agent_id', `"${FLEET_STREAM}" is reserved (the audit stream of policy and token actions); choose another agent id`);
  }
}
