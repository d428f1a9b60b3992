import { isPemCertificate } from '../pki/pem-certificate.js';
import type { ServiceTls } from '../pki/service-tls.js';
import { recordOf, RegistrarClient } from '../registrar/registrar-client.js';
import type { AgentShowReplyResults } from '../registrar/registrar-reply-dtos.js';
import { OtherServiceReply } from '../http/other-service-reply.js';
import { BadRemoteReplyError } from '../http/client-errors.js';
import type { IdentityMode, TrustLevel } from '../identity/trust-level.js';

/** Default registrar TLS port URL (Keylime `[registrar] tls_port` 8891). */
export const DEFAULT_REGISTRAR_TLS_URL = 'https://127.0.0.1:8891';

/** An agent as the registrar holds it (spec §1.5), binary fields decoded. Nothing here is verified yet. */
export interface RegisteredAgent {
  readonly agentId: string;
  /** TPM2B_PUBLIC of the EK. */
  readonly ekPublic: Uint8Array;
  /** DER EK certificate, or null when the agent registered none. */
  readonly ekCertificate: Uint8Array | null;
  /** TPM2B_PUBLIC of the AK the registrar saw activated. */
  readonly akPublic: Uint8Array;
  /** The agent's self-signed HTTPS certificate (PEM), or null for "disabled" (push agents) or none. */
  readonly mtlsCert: string | null;
  readonly ip: string | null;
  readonly port: number | null;
  readonly regcount: number;
  /** ironlime's registrar only (docs/identity.md); undefined from Keylime's. */
  readonly identityMode?: IdentityMode | undefined;
  readonly trustLevel?: TrustLevel | undefined;
}

/** An admin client for the registrar's TLS port, with the tenant's CA and client certificate. */
export function openRegistrarAdmin(registrarUrl: string, tls: ServiceTls): RegistrarClient {
  return new RegistrarClient({ baseUrl: registrarUrl, tls: { ca: tls.ca, cert: tls.cert, key: tls.key } });
}

/** `GET /agents`: every registered agent id. */
export function listRegistrarAgents(registrar: RegistrarClient): Promise<string[]> {
  return registrar.list();
}

/**
 * `GET /agents/{id}`, decoded. A 404 `KeylimeHttpError` when the agent is unknown or not activated.
 * @throws BadRemoteReplyError when `mtls_cert` is neither "disabled" nor a certificate.
 */
export async function showRegistrarAgent(registrar: RegistrarClient, agentId: string): Promise<RegisteredAgent> {
  return decodeRegisteredAgent(await registrar.show(agentId), agentId);
}

/**
 * `DELETE /agents/{id}`, unless a record read first answers with a verifier's status: a verifier serves
 * the same path, and a DELETE sent there would end the agent's attestation instead. Any other outcome of
 * that read (a 404 for a registration never activated, an error) leaves the DELETE to answer.
 * @throws OtherServiceReply
 */
export async function deleteRegistrarAgent(registrar: RegistrarClient, agentId: string): Promise<void> {
  await registrar.show(agentId).catch((error: unknown) => {
    if (error instanceof OtherServiceReply) throw error;
  });
  await registrar.delete(agentId);
}

/**
 * Decodes the registrar's `results` (base64 fields already shape-checked by the client's DTO).
 * @throws BadRemoteReplyError when the record is not that of `agentId`, or has no EK or AK.
 */
export function decodeRegisteredAgent(results: AgentShowReplyResults, agentId: string): RegisteredAgent {
  // A record for another agent must never stand in for the one asked about (its AK would be trusted).
  recordOf(agentId, results);
  const mtls = results.mtls_cert ?? null;
  if (mtls !== null && mtls !== 'disabled' && !isPemCertificate(mtls)) {
    throw new BadRemoteReplyError(`registrar agent ${agentId}`, 'mtls_cert is not a PEM certificate');
  }
  if (results.ek_tpm === null || results.ek_tpm === undefined || results.aik_tpm === null || results.aik_tpm === undefined) {
    throw new BadRemoteReplyError(`registrar agent ${agentId}`, `registered without a TPM (${results.identity_mode ?? 'no EK or AK'}): it has no identity quote to check`);
  }
  return {
    agentId: results.agent_id,
    ekPublic: bytes(results.ek_tpm),
    ekCertificate: results.ekcert === null || results.ekcert === undefined || results.ekcert === '' ? null : bytes(results.ekcert),
    akPublic: bytes(results.aik_tpm),
    mtlsCert: mtls === 'disabled' ? null : mtls,
    ip: results.ip ?? null,
    port: results.port ?? null,
    regcount: results.regcount,
    identityMode: results.identity_mode,
    trustLevel: results.trust_level,
  };
}

/** The registrar's JSON view of an agent for the CLI: Keylime's field names, certificates as given. */
export function registeredAgentJson(agent: RegisteredAgent): Record<string, unknown> {
  return {
    agent_id: agent.agentId,
    ek_tpm: Buffer.from(agent.ekPublic).toString('base64'),
    ekcert: agent.ekCertificate === null ? null : Buffer.from(agent.ekCertificate).toString('base64'),
    aik_tpm: Buffer.from(agent.akPublic).toString('base64'),
    mtls_cert: agent.mtlsCert ?? 'disabled',
    ip: agent.ip,
    port: agent.port,
    regcount: agent.regcount,
    ...(agent.trustLevel === undefined ? {} : { identity_mode: agent.identityMode, trust_level: agent.trustLevel }),
  };
}

function bytes(base64: string): Uint8Array {
  return new Uint8Array(Buffer.from(base64, 'base64'));
}
