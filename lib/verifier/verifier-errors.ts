import { IronlimeError, type IronlimeErrorOptions } from '../../interfaces/errors.js';

/**
 * Refusals specific to the verifier. Each maps to one HTTP status through `ERROR_CODES`; the service
 * shell turns the message into the `status` of Keylime's envelope.
 */

/** No agent with this id is enrolled with this verifier (or it belongs to another `verifier_id`). */
/** `/liveness/{id}`: no node of this id is liveness-checked here, or it is another tenant's (the same answer). */
export class LivenessNotEnrolled extends IronlimeError {
  constructor(agentId: string) {
    super('ERR_NOT_FOUND', `agent ${agentId} is not enrolled for liveness checks`);
  }
}

export class VerifierAgentNotFound extends IronlimeError {
  readonly agentId: string;

  constructor(agentId: string) {
    super('ERR_NOT_FOUND', `Agent ${agentId} not found`);
    this.agentId = agentId;
  }
}

/** No runtime policy / refstate stored under this name. */
export class PolicyNotFound extends IronlimeError {
  constructor(kind: 'runtime policy' | 'measured boot policy', name: string) {
    super('ERR_NOT_FOUND', `${kind} ${name} not found`);
  }
}

/** The agent id or policy name is taken, or the policy is still used by an agent (Keylime answers 409). */
export class VerifierConflict extends IronlimeError {
  constructor(detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_CONFLICT', detail, options);
  }
}
