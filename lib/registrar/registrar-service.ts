import type { Logger } from 'pino';
import { inject, injectable } from 'tsyringe';
import { checkAuthTag } from '../tpm/auth-tag.js';
import { makeCredential } from '../tpm/make-credential.js';
import { newActivationCredential } from './activation-credential.js';
import { EkTrust } from './ek-trust.js';
import { RegistrarAgentRepository } from './registrar-agent-repository.js';
import { REGISTRAR_LOGGER } from './registrar-tokens.js';
import type { RegisterAgentBody } from './registrar-dtos.js';
import { ActivationFailed, AgentNotFound } from './registrar-errors.js';
import { checkRegistration } from './registration-check.js';
import { applyActivation, decideRegistration } from './registration-decision.js';

/** `results` of a successful registration: the MakeCredential blob, base64 (spec §1.3 step 9). */
export interface RegisterResults {
  readonly blob: string;
}

/** `results` of `GET /v2.x/agents` (Keylime `AgentsController.index`). */
export interface AgentListResults {
  readonly uuids: string[];
}

/** `results` of `GET /v2.x/agents/{id}` (spec §1.5). */
export interface AgentShowResults {
  readonly agent_id: string;
  readonly ek_tpm: string;
  /** base64 DER of the EK certificate, or null. */
  readonly ekcert: string | null;
  readonly aik_tpm: string;
  readonly mtls_cert: string | null;
  readonly ip: string | null;
  readonly port: number | null;
  readonly regcount: number;
}

/**
 * The registrar's decisions, independent of HTTP: register (check, challenge, store), activate (check
 * the proof, activate or delete), and the admin reads. Every refusal is a typed error the service
 * shell maps to Keylime's envelope; a refused request never changes what is stored, except a wrong
 * activation proof, which deletes the agent as Keylime does.
 */
@injectable()
export class RegistrarService {
  constructor(
    private readonly repository: RegistrarAgentRepository,
    private readonly ekTrust: EkTrust,
    @inject(REGISTRAR_LOGGER) private readonly log: Logger,
  ) {}

  /**
   * Registers (or re-registers) `agentId`: checks the TPM objects and the EK certificate, issues a
   * fresh MakeCredential challenge for the EK/AK pair (spec §5.1) and stores the record with the
   * challenge's HMAC key. Returns the blob the agent feeds to TPM2_ActivateCredential.
   */
  async register(agentId: string, body: RegisterAgentBody): Promise<RegisterResults> {
    const checked = checkRegistration(body);
    this.ekTrust.judge(agentId, checked);
    const credential = newActivationCredential();
    const blob = makeCredential({ ekPublic: checked.ekPublic, akName: checked.akName, secret: credential.credential });
    const stored = await this.repository.register(agentId, checked.ekTpm, (current) =>
      decideRegistration(agentId, current, checked, credential.key),
    );
    this.log.info({ agentId, regcount: stored.regcount }, 'agent registered');
    return { blob: Buffer.from(blob).toString('base64') };
  }

  /**
   * Checks `auth_tag` = hex(HMAC-SHA384(stored key, agent id)) in constant time (spec §1.4). A match
   * marks the agent active and puts contact details proposed by its last re-registration in force. A
   * mismatch deletes a never-activated agent (the agent must restart to register again); an active
   * agent — whose public EK and AK anyone can replay — keeps its record and proven contact details,
   * and the proposed ones are dropped.
   *
   * @throws AgentNotFound (404) when the agent is unknown or its registration expired;
   *   ActivationFailed (400) on a wrong tag.
   */
  async activate(agentId: string, authTag: string): Promise<void> {
    let accepted = false;
    const result = await this.repository.activate(agentId, (current) => {
      accepted = checkAuthTag(current.activationKey, agentId, authTag);
      if (accepted) {
        return applyActivation(current);
      }
      return current.active ? { ...current, pendingContact: null } : 'delete';
    });
    if (result.outcome === 'not-found') {
      throw new AgentNotFound(`Agent with ID '${agentId}' not found`);
    }
    if (result.outcome === 'deleted') {
      this.log.warn({ agentId }, 'activation proof mismatch: agent deleted');
      throw new ActivationFailed(agentId);
    }
    if (!accepted) {
      this.log.warn({ agentId }, 'activation proof mismatch for an active agent: proposed contact details dropped');
      throw new ActivationFailed(agentId, false);
    }
    this.log.info({ agentId, ip: result.agent.ip, port: result.agent.port }, 'agent activated');
  }

  async list(): Promise<AgentListResults> {
    return { uuids: await this.repository.listIds() };
  }

  /** The record of an active agent. @throws AgentNotFound when unknown or not yet activated. */
  async show(agentId: string): Promise<AgentShowResults> {
    const agent = await this.repository.find(agentId);
    if (agent === undefined) {
      throw new AgentNotFound(`Agent with ID '${agentId}' not found`);
    }
    if (!agent.active) {
      throw new AgentNotFound(`Agent with ID '${agentId}' has not been activated`);
    }
    return {
      agent_id: agent.agentId,
      ek_tpm: agent.ekTpm,
      ekcert: agent.ekCert,
      aik_tpm: agent.aikTpm,
      mtls_cert: agent.mtlsCert,
      ip: agent.ip,
      port: agent.port,
      regcount: agent.regcount,
    };
  }

  /** @throws AgentNotFound when unknown. */
  async delete(agentId: string): Promise<void> {
    if (!(await this.repository.delete(agentId))) {
      throw new AgentNotFound(`Agent with ID '${agentId}' not found`);
    }
    this.log.info({ agentId }, 'agent deleted');
  }
}
