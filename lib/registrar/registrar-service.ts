import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { inject, injectable } from 'tsyringe';
import { IronlimeError } from '../../interfaces/errors.js';
import { hostIdHash, parseMacAddress, parseSystemUuid } from '../identity/host-id.js';
import { verifyHostRegistrationProof } from '../identity/host-secret-proof.js';
import { trustLevelOfMode, type IdentityMode, type TrustLevel } from '../identity/trust-level.js';
import { makeCredential } from '../tpm/make-credential.js';
import { newActivationCredential } from './activation-credential.js';
import { judgeAuthTag, judgeHostProof, spentActivationKey } from './activation-proof.js';
import { EkTrust } from './ek-trust.js';
import { decideHostIdClaim, decideIdentityContinuity } from './identity-continuity.js';
import { RegistrarAgentRepository, type ActivationOutcome, type StoredAgent } from './registrar-agent-repository.js';
import { REGISTRAR_LOGGER } from './registrar-tokens.js';
import { registersTpm, type RegisterAgentBody } from './registrar-dtos.js';
import { ActivationFailed, AgentNotFound, IdentityContinuityRefused, InvalidAgentData, NoTpmToActivate, RegistrarFull, RegistrationConflict } from './registrar-errors.js';
import { checkMtlsCert, checkRegistration } from './registration-check.js';
import { applyActivation, decideRegistration, type RegistrationOffer } from './registration-decision.js';

/**
 * `results` of a successful registration: the MakeCredential blob, base64 (spec §1.3 step 9), for a
 * TPM; the nonce an `id-secret` host answers with its proof; nothing for `id-only`.
 */
export type RegisterResults = { readonly blob: string } | { readonly nonce: string } | Record<string, never>;

/** `results` of `GET /v2.x/agents/{id}/identity` (ironlime): how the agent registered and what it is worth. */
export interface AgentIdentityResults {
  readonly agent_id: string;
  readonly identity_mode: IdentityMode;
  readonly trust_level: TrustLevel;
  readonly host_id_hash: string | null;
  /** `id-secret` only: the key the verifier checks liveness proofs with (docs/identity.md). */
  readonly host_proof_key: string | null;
  readonly mode_change_to: IdentityMode | null;
  readonly flagged_reason: string | null;
  readonly ip: string | null;
  readonly port: number | null;
  readonly mtls_cert: string | null;
}

/** `results` of `GET /v2.x/agents` (Keylime `AgentsController.index`). */
export interface AgentListResults {
  readonly uuids: string[];
}

/** `results` of `GET /v2.x/agents/{id}` (spec §1.5). */
export interface AgentShowResults {
  readonly agent_id: string;
  /** null for an agent without a TPM. */
  readonly ek_tpm: string | null;
  /** base64 DER of the EK certificate, or null. */
  readonly ekcert: string | null;
  readonly aik_tpm: string | null;
  readonly mtls_cert: string | null;
  readonly ip: string | null;
  readonly port: number | null;
  readonly regcount: number;
  /** ironlime's additions (docs/identity.md); Keylime's tenant ignores them. */
  readonly identity_mode: IdentityMode;
  readonly trust_level: TrustLevel;
  readonly flagged_reason: string | null;
}

/**
 * The registrar's decisions, independent of HTTP: register (check, challenge, store), activate (check
 * the proof, activate), and the admin reads. Every refusal is a typed error the service shell maps to
 * Keylime's envelope; a refused request never changes what is stored (but the flag of a refused
 * downgrade).
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
    const mode = body.identity_mode ?? 'tpm';
    const host = body.host_id === undefined ? null : hostIdHashOf(body.host_id);
    if (registersTpm(body)) {
      const checked = checkRegistration(body);
      // An emulated TPM has no vendor to chain to: its EK certificate is not judged, and it never counts as hardware.
      const vouched = mode === 'tpm' && this.ekTrust.judge(agentId, checked);
      const credential = newActivationCredential();
      const blob = makeCredential({ ekPublic: checked.ekPublic, akName: checked.akName, secret: credential.credential });
      const offer: RegistrationOffer = { ...checked, identityMode: mode, trustLevel: vouched ? 'hardware-tpm' : 'emulated-tpm', hostIdHash: host, hostProofKey: null };
      await this.store(agentId, offer, credential.key);
      return { blob: Buffer.from(blob).toString('base64') };
    }
    if (host === null) {
      throw new InvalidAgentData('host_id', `required for identity mode ${mode}`);
    }
    if (mode === 'id-only' && body.host_proof_key !== undefined) {
      throw new InvalidAgentData('host_proof_key', 'an id-only host has no secret');
    }
    const offer: RegistrationOffer = {
      identityMode: mode,
      trustLevel: trustLevelOfMode(mode),
      ekTpm: null,
      ekKeyHash: null,
      ekCertDer: null,
      aikTpm: null,
      hostIdHash: host,
      hostProofKey: body.host_proof_key ?? null,
      ip: body.ip ?? null,
      port: body.port ?? null,
      mtlsCert: checkMtlsCert(body.mtls_cert),
    };
    const nonce = mode === 'id-secret' ? randomBytes(32).toString('hex') : '';
    await this.store(agentId, offer, nonce);
    return mode === 'id-secret' ? { nonce } : {};
  }

  /** Judges continuity, stores the registration, and flags the record a refused downgrade aimed at. */
  private async store(agentId: string, offer: RegistrationOffer, activationKey: string): Promise<StoredAgent> {
    let flag: string | undefined;
    try {
      const stored = await this.repository.register(agentId, offer, (current, sameHost) => {
        const continuity = decideIdentityContinuity(current, sameHost, { ...offer, mode: offer.identityMode });
        if (continuity.kind === 'refuse') {
          flag = continuity.flag;
          throw new IdentityContinuityRefused(agentId, continuity.reason);
        }
        try {
          return decideRegistration(agentId, current, offer, activationKey, continuity.fresh);
        } catch (error) {
          // Another EK or AK under a stored id: as much a downgrade attempt as coming back without a TPM.
          if (error instanceof RegistrationConflict && current !== undefined) flag = current.agentId;
          throw error;
        }
      });
      this.log.info({ agentId, regcount: stored.regcount, mode: stored.identityMode, trustLevel: stored.trustLevel }, 'agent registered');
      return stored;
    } catch (error) {
      if (error instanceof RegistrarFull) this.log.warn({ agentId, mode: offer.identityMode }, error.message);
      if (error instanceof RegistrationConflict && flag !== undefined) {
        this.log.warn({ agentId, flagged: flag, reason: error.message }, 'registration refused: identity downgrade');
        // A record that cannot be changed (DamagedAgentRecord) cannot be flagged either: that refusal, which
        // tells the operator to delete it, replaces this one; nothing is stored in either case.
        await this.repository.flag(flag, error.message);
      }
      throw error;
    }
  }

  /**
   * An `id-secret` host's proof for its registration nonce (`hostRegistrationProof`, labelled apart
   * from a liveness proof). A match activates the agent and spends the nonce: only a digest of the
   * accepted proof is kept, so the same proof sent again while the agent is active (a PUT whose reply
   * was lost, sent once more) is answered 200 and changes nothing, as a repeated `auth_tag`. A mismatch
   * changes nothing, as a wrong `auth_tag` (`activate`): anyone may send a proof while nobody can forge
   * one, so deleting a never-activated record, or spending the nonce and dropping an active one's
   * proposed contact details, would let anyone cancel a genuine registration or move.
   *
   * @throws AgentNotFound when unknown; ActivationFailed (400, nothing changed) on a wrong proof, a spent nonce or another mode.
   */
  async activateHostProof(agentId: string, proof: string): Promise<void> {
    let repeated = false;
    const result = await this.activateRecord(agentId, (current) => {
      const proofKey = current.identityMode === 'id-secret' ? current.hostProofKey : null;
      const judgement =
        proofKey === null ? 'mismatch' : judgeHostProof(current.activationKey, proof, (nonce) => verifyHostRegistrationProof(Buffer.from(proofKey, 'hex'), agentId, nonce, proof));
      if (judgement === 'proof') return applyActivation(current, spentActivationKey(proof));
      if (judgement === 'repeat' && current.active) {
        repeated = true;
        return current;
      }
      // Thrown inside the transaction: it rolls back, so the nonce and any pending contact stay as they were.
      throw new ActivationFailed(agentId, current.active ? 'contact-kept' : 'not-activated', 'host_proof');
    }).catch((error: unknown) => {
      if (error instanceof ActivationFailed) this.log.warn({ agentId }, 'host proof mismatch: nothing changed');
      throw error;
    });
    if (result.outcome === 'not-found') throw new AgentNotFound(`Agent with ID '${agentId}' not found`);
    if (repeated) {
      this.log.info({ agentId }, 'host proof repeated for an active agent: nothing changed');
      return;
    }
    this.log.info({ agentId }, 'id-secret agent proved its host secret');
  }

  /** Allows the next registration of `agentId` to use `mode` (the admin's explicit mode change). @throws AgentNotFound */
  async allowModeChange(agentId: string, mode: IdentityMode): Promise<void> {
    if (!(await this.repository.allowModeChange(agentId, mode))) {
      throw new AgentNotFound(`Agent with ID '${agentId}' not found`);
    }
    this.log.warn({ agentId, mode }, 'admin allowed an identity mode change');
  }

  /** How an active agent registered. @throws AgentNotFound when unknown or not yet activated. */
  async identity(agentId: string): Promise<AgentIdentityResults> {
    const agent = await this.activeAgent(agentId);
    return {
      agent_id: agent.agentId,
      identity_mode: agent.identityMode,
      trust_level: agent.trustLevel,
      host_id_hash: agent.hostIdHash,
      host_proof_key: agent.hostProofKey,
      mode_change_to: agent.modeChangeTo,
      flagged_reason: agent.flaggedReason,
      ip: agent.ip,
      port: agent.port,
      mtls_cert: agent.mtlsCert,
    };
  }

  /**
   * Checks `auth_tag` = hex(HMAC-SHA384(stored key, agent id)) in constant time (spec §1.4). A match
   * marks the agent active, puts contact details proposed by its last re-registration in force, and
   * spends the key: only a digest of the accepted tag is kept, so the same tag sent again (the Rust
   * agent retries a PUT whose reply was lost) is answered 200 and changes nothing.
   *
   * A mismatch changes nothing and is 400 (stricter than Keylime, which deletes the agent): the tag
   * is 96 hex digits keyed with a 32-character random credential, so guessing is hopeless, while
   * anyone can send a wrong one. Deleting a never-activated record would let them cancel a genuine
   * first registration, and dropping an active agent's proposed contact details would let them
   * cancel its move while its right tag still got 200 (hunt H6).
   *
   * Only the TPM modes activate here: an `id-secret` record's key is the nonce its registration
   * handed out, which anyone who registers under the id receives, and an `id-only` record has none.
   *
   * @throws AgentNotFound (404) when the agent is unknown or its registration expired;
   *   ActivationFailed (400, nothing changed) on a wrong tag; NoTpmToActivate (400, nothing changed) without a TPM.
   */
  async activate(agentId: string, authTag: string): Promise<void> {
    let repeated = false;
    const result = await this.activateRecord(agentId, (current) => {
      if (current.identityMode === 'id-secret' || current.identityMode === 'id-only') {
        // Thrown inside the transaction: it rolls back, so the record keeps its nonce and pending contact.
        throw new NoTpmToActivate(agentId, current.identityMode);
      }
      const judgement = judgeAuthTag(current.activationKey, agentId, authTag);
      if (judgement === 'proof') return applyActivation(current, spentActivationKey(authTag));
      if (judgement === 'repeat' && current.active) {
        repeated = true;
        return current;
      }
      // Thrown inside the transaction: it rolls back, so the record, its key and any pending contact stay as they were.
      throw new ActivationFailed(agentId, current.active ? 'contact-kept' : 'not-activated');
    }).catch((error: unknown) => {
      if (error instanceof ActivationFailed) this.log.warn({ agentId }, 'activation proof mismatch: nothing changed');
      throw error;
    });
    if (result.outcome === 'not-found') {
      throw new AgentNotFound(`Agent with ID '${agentId}' not found`);
    }
    if (repeated) {
      this.log.info({ agentId }, 'activation proof repeated for an active agent: nothing changed');
      return;
    }
    this.log.info({ agentId, ip: result.agent.ip, port: result.agent.port }, 'agent activated');
  }

  /**
   * Runs an activation's `decide` on the stored record. A record that becomes active takes its host id,
   * so it is judged against the activated records holding it (`decideHostIdClaim`): of two records that
   * would exclude each other, the first activated keeps the host id. A refusal changes nothing (the
   * nonce or credential stays as it was) and flags the holder.
   *
   * @throws IdentityContinuityRefused (403) when another activated record holds the host id.
   */
  private async activateRecord(agentId: string, decide: (current: StoredAgent) => Omit<StoredAgent, 'agentId'>): Promise<ActivationOutcome> {
    let flag: string | undefined;
    try {
      return await this.repository.activate(agentId, (current, sameHost) => {
        const next = decide(current);
        if (!next.active || current.active) return next;
        const claim = decideHostIdClaim(agentId, sameHost, { ...next, mode: next.identityMode });
        if (claim.kind === 'refuse') {
          flag = claim.flag;
          throw new IdentityContinuityRefused(agentId, claim.reason, 'activation');
        }
        return next;
      });
    } catch (error) {
      if (error instanceof IdentityContinuityRefused && flag !== undefined) {
        this.log.warn({ agentId, flagged: flag, reason: error.message }, 'activation refused: the host id is held by another agent');
        await this.repository.flag(flag, error.message);
      }
      throw error;
    }
  }

  async list(): Promise<AgentListResults> {
    return { uuids: await this.repository.listIds() };
  }

  /** The record of an active agent. @throws AgentNotFound when unknown or not yet activated. */
  async show(agentId: string): Promise<AgentShowResults> {
    const agent = await this.activeAgent(agentId);
    return {
      agent_id: agent.agentId,
      ek_tpm: agent.ekTpm,
      ekcert: agent.ekCert,
      aik_tpm: agent.aikTpm,
      mtls_cert: agent.mtlsCert,
      ip: agent.ip,
      port: agent.port,
      regcount: agent.regcount,
      identity_mode: agent.identityMode,
      trust_level: agent.trustLevel,
      flagged_reason: agent.flaggedReason,
    };
  }

  private async activeAgent(agentId: string): Promise<StoredAgent> {
    const agent = await this.repository.find(agentId);
    if (agent === undefined) {
      throw new AgentNotFound(`Agent with ID '${agentId}' not found`);
    }
    if (!agent.active) {
      throw new AgentNotFound(`Agent with ID '${agentId}' has not been activated`);
    }
    return agent;
  }

  /** @throws AgentNotFound when unknown. */
  async delete(agentId: string): Promise<void> {
    if (!(await this.repository.delete(agentId))) {
      throw new AgentNotFound(`Agent with ID '${agentId}' not found`);
    }
    this.log.info({ agentId }, 'agent deleted');
  }
}

/** sha256 of a `sys-uuid:…` / `mac:…` host id, after the placeholder checks. @throws InvalidAgentData */
function hostIdHashOf(field: string): string {
  const separator = field.indexOf(':');
  const kind = field.slice(0, separator);
  const value = field.slice(separator + 1);
  try {
    return hostIdHash(kind === 'mac' ? parseMacAddress(value) : parseSystemUuid(value));
  } catch (error) {
    if (error instanceof IronlimeError) throw new InvalidAgentData('host_id', error.message, { cause: error });
    throw error;
  }
}
