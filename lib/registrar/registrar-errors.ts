import { IronlimeError, type IronlimeErrorOptions } from '../../interfaces/errors.js';
import type { IdentityMode } from '../identity/trust-level.js';

/**
 * Refusals specific to the registrar. Each maps to one HTTP status through `ERROR_CODES`, and the
 * service shell turns its message into the `status` of Keylime's envelope.
 */

/**
 * The agent id is stored with another TPM identity (EK, EK certificate or AK), or a concurrent first
 * registration of the same id won the race. Keylime answers both with 403; the operator deletes the
 * record first if the machine really changed its TPM.
 */
export class RegistrationConflict extends IronlimeError {
  constructor(detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_REGISTRATION_CONFLICT', detail, options);
  }
}

/**
 * A registration would continue an identity at a lower level or with other credentials (issue 15
 * item 5): a TPM host back without its TPM or with another EK, an `id-secret` host with another
 * secret, another mode under the same id; or an activation would take a host id another activated
 * record holds. Refused (403) and flagged on the stored record concerned.
 */
export class IdentityContinuityRefused extends RegistrationConflict {
  constructor(agentId: string, reason: string, step: 'registration' | 'activation' = 'registration') {
    super(`${step} of agent '${agentId}' refused and flagged: ${reason}`);
  }
}

/**
 * The stored record cannot be changed: it predates a rule the database now enforces on every write (a
 * record with an EK must carry its `ek_key_hash`) and cannot be brought up to it, because its EK no
 * longer parses. Nothing is changed, so the record gains no trust it did not have; an operator deletes
 * the agent and it registers again.
 */
export class DamagedAgentRecord extends IronlimeError {
  constructor(agentId: string, detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_CONFLICT', `the stored record of agent '${agentId}' cannot be changed: ${detail}; delete the agent and register it again`, options);
  }
}

/**
 * The registration body is well-formed but its TPM objects are unusable: the AK is not a restricted
 * signing key, the EK public key differs from the one in the EK certificate, a key type is unsupported.
 * `field` names the body field at fault.
 */
export class InvalidAgentData extends IronlimeError {
  readonly field: string;

  constructor(field: string, detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_INVALID_AGENT_DATA', `body.${field}: ${detail}`, options);
    this.field = field;
  }
}

/**
 * A new agent id (or an admin-allowed mode change) would take one identity mode other than `tpm` past
 * `maxAgentsPerNonTpmMode`: nothing else bounds what anonymous `id-only`, `id-secret` or
 * `emulated-tpm` registrations leave in the table. Ids already stored still re-register. 403, as the
 * per-EK cap's ERR_REGISTRATION_CONFLICT: only an admin lifts it, and a 429 or 503 reads as transient
 * (the Rust agent retries them); a 5xx message would also be hidden by the shell.
 */
export class RegistrarFull extends IronlimeError {
  constructor(agentId: string, mode: Exclude<IdentityMode, 'tpm'>, count: number) {
    super(
      'ERR_REGISTRAR_FULL',
      `agent '${agentId}' refused: the registrar holds ${count} ${mode} agents, its limit per identity mode other than tpm ` +
        '(maxAgentsPerNonTpmMode); an admin deletes agents no longer in use or raises the limit',
    );
  }
}

/** The EK certificate is missing or does not chain to a trusted TPM vendor CA (`--ek-check require`). */
export class EkCertificateUntrusted extends IronlimeError {
  constructor(detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_EK_CERT_UNTRUSTED', detail, options);
  }
}

/**
 * The activation proof (`auth_tag` or `id-secret` host proof) did not match; nothing changed.
 * `contact-kept`: an active agent keeps its proven contact details (any proposed ones still wait for
 * the right proof); `not-activated`: a record that is not active yet is kept as it was (its right
 * proof still activates it).
 */
export class ActivationFailed extends IronlimeError {
  /** `proof`: the field that did not match, named in the message (`auth_tag`, or an `id-secret` host's `host_proof`). */
  constructor(agentId: string, outcome: 'contact-kept' | 'not-activated', proof: 'auth_tag' | 'host_proof' = 'auth_tag') {
    const consequence = {
      'contact-kept': 'its proven contact details are kept',
      'not-activated': 'the agent is not activated',
    }[outcome];
    super('ERR_ACTIVATION_FAILED', `${proof} for agent '${agentId}' does not match; ${consequence}`);
  }
}

/**
 * The TPM activation route (`PUT /agents/{id}`, `…/activate`) was used for an agent registered without a
 * TPM. Its stored key is no credential sealed to an EK: an `id-secret` record holds the registration
 * nonce, handed to whoever registered, and an `id-only` record holds nothing, so a tag over it proves
 * nothing. Refused (400) before the tag is looked at; the record is left as it was.
 */
export class NoTpmToActivate extends IronlimeError {
  constructor(agentId: string, mode: 'id-secret' | 'id-only') {
    const instead = mode === 'id-secret' ? `it answers its nonce at PUT /agents/${agentId}/host-proof` : 'it has nothing to prove';
    super('ERR_ACTIVATION_FAILED', `agent '${agentId}' is registered as ${mode}, which has no TPM credential to activate; ${instead}`);
  }
}

/** No record for this agent id, or (for `show`) the agent has not proved its AK yet. */
export class AgentNotFound extends IronlimeError {
  constructor(detail: string) {
    super('ERR_NOT_FOUND', detail);
  }
}
