import { InvalidParameterValue } from '../../interfaces/errors.js';
import { isIdentityMode, isTrustLevel, type IdentityMode, type TrustLevel } from '../identity/trust-level.js';
import type { StoredAgent } from './registrar-agent-repository.js';

/** A `registrar_agents` row as knex reads and writes it, and its mapping to `StoredAgent`. */

export const AGENTS_TABLE = 'registrar_agents';

export interface AgentRow {
  agent_id: string;
  ek_tpm: string | null;
  ekcert: string | null;
  aik_tpm: string | null;
  activation_key: string;
  active: boolean;
  ip: string | null;
  port: number | null;
  mtls_cert: string | null;
  pending_contact: boolean;
  pending_ip: string | null;
  pending_port: number | null;
  pending_mtls_cert: string | null;
  regcount: number;
  identity_mode: string;
  trust_level: string;
  host_id_hash: string | null;
  host_proof_key: string | null;
  mode_change_to: string | null;
  flagged_reason: string | null;
}

export const AGENT_COLUMNS = [
  'agent_id',
  'ek_tpm',
  'ekcert',
  'aik_tpm',
  'activation_key',
  'active',
  'ip',
  'port',
  'mtls_cert',
  'pending_contact',
  'pending_ip',
  'pending_port',
  'pending_mtls_cert',
  'regcount',
  'identity_mode',
  'trust_level',
  'host_id_hash',
  'host_proof_key',
  'mode_change_to',
  'flagged_reason',
] as const;

export function toRow(agent: StoredAgent): AgentRow {
  return {
    agent_id: agent.agentId,
    ek_tpm: agent.ekTpm,
    ekcert: agent.ekCert,
    aik_tpm: agent.aikTpm,
    activation_key: agent.activationKey,
    active: agent.active,
    ip: agent.ip,
    port: agent.port,
    mtls_cert: agent.mtlsCert,
    pending_contact: agent.pendingContact !== null,
    pending_ip: agent.pendingContact?.ip ?? null,
    pending_port: agent.pendingContact?.port ?? null,
    pending_mtls_cert: agent.pendingContact?.mtlsCert ?? null,
    regcount: agent.regcount,
    identity_mode: agent.identityMode,
    trust_level: agent.trustLevel,
    host_id_hash: agent.hostIdHash,
    host_proof_key: agent.hostProofKey,
    mode_change_to: agent.modeChangeTo,
    flagged_reason: agent.flaggedReason,
  };
}

export function fromRow(row: AgentRow): StoredAgent {
  return {
    agentId: row.agent_id,
    ekTpm: row.ek_tpm,
    ekCert: row.ekcert,
    aikTpm: row.aik_tpm,
    activationKey: row.activation_key,
    active: Boolean(row.active),
    ip: row.ip,
    port: row.port === null ? null : Number(row.port),
    mtlsCert: row.mtls_cert,
    pendingContact: Boolean(row.pending_contact)
      ? {
          ip: row.pending_ip,
          port: row.pending_port === null ? null : Number(row.pending_port),
          mtlsCert: row.pending_mtls_cert,
        }
      : null,
    regcount: Number(row.regcount),
    identityMode: storedMode(row.identity_mode, row.agent_id),
    trustLevel: storedLevel(row.trust_level, row.agent_id),
    hostIdHash: row.host_id_hash,
    hostProofKey: row.host_proof_key,
    modeChangeTo: row.mode_change_to === null ? null : storedMode(row.mode_change_to, row.agent_id),
    flaggedReason: row.flagged_reason,
  };
}

/** A stored mode or level that is not one of ours is a damaged row: refuse it rather than guess. */
function storedMode(text: string, agentId: string): IdentityMode {
  if (!isIdentityMode(text)) throw new InvalidParameterValue(`registrar_agents.identity_mode of ${agentId}`, `unknown mode "${text}"`);
  return text;
}

function storedLevel(text: string, agentId: string): TrustLevel {
  if (!isTrustLevel(text)) throw new InvalidParameterValue(`registrar_agents.trust_level of ${agentId}`, `unknown level "${text}"`);
  return text;
}
