import { BadRemoteReplyError } from '../http/client-errors.js';
import { validateDto } from '../http/dto-validation.js';
import { RequestValidationError } from '../http/http-errors.js';
import { createKeylimeClient, type KeylimeClient } from '../http/keylime-client.js';
import type { KeylimeClientTls } from '../http/keylime-client-tls.js';
import { NegotiatedApiVersion } from '../http/negotiated-api-version.js';
import type { HostId } from '../identity/host-id.js';
import type { IdentityMode } from '../identity/trust-level.js';
import {
  AgentIdentityReplyResults,
  AgentListReplyResults,
  IdentityRegisterReplyResults,
  AgentShowReplyResults,
  RegisterReplyResults,
  RegistrarVersionResults,
} from './registrar-reply-dtos.js';
import { refuseOtherServiceReply } from '../http/other-service-reply.js';

/** What an agent registers with (spec §1.2); binary fields are raw bytes, the client base64-encodes them. */
export interface AgentRegistration {
  /** TPM2B_PUBLIC of the EK. */
  readonly ekPublic: Uint8Array;
  /** DER EK certificate, or PEM text (a chain: intermediates first, the EK certificate last). */
  readonly ekCertificate?: Uint8Array | string | null;
  /** TPM2B_PUBLIC of the AK. */
  readonly akPublic: Uint8Array;
  readonly ip?: string;
  readonly port?: number;
  /** PEM of the agent's HTTPS server certificate, or "disabled" (push agents). */
  readonly mtlsCert?: string;
}

/** A registration without a TPM (`id-secret`, `id-only`; docs/identity.md). */
export interface HostRegistration {
  readonly mode: 'id-secret' | 'id-only';
  readonly hostId: HostId;
  /** `id-secret`, first registration only: hex proof key derived from the host secret. */
  readonly hostProofKey?: string;
  readonly ip?: string;
  readonly port?: number;
  readonly mtlsCert?: string;
}

export interface RegistrarClientOptions {
  /** `http://host:8890` for an agent (register/activate), `https://host:8891` for admin calls. */
  readonly baseUrl: string;
  /** A fixed API version for the URLs; without it the client negotiates (see the class comment). */
  readonly apiVersion?: string;
  /** For https: the registrar's CA and, for admin calls, a client certificate + key from that CA. */
  readonly tls?: KeylimeClientTls;
  readonly timeoutMs?: number;
}

/** Registrar API versions this client speaks (spec §0.2): `mtls_cert` is in the record from 2.0, the Rust agent starts at 2.1. */
export const REGISTRAR_CLIENT_API_VERSIONS: readonly string[] = ['2.1', '2.2', '2.3', '2.4', '2.5', '2.6'];

/**
 * A typed client for a Keylime-compatible registrar (ours or Keylime's). Agent side: `register` and
 * `activate` (usually over plain HTTP). Tenant/driver side: `list`, `show`, `delete` over mTLS. Every
 * method resolves on a 2xx reply or throws the shell's typed errors: `KeylimeHttpError` (the
 * registrar refused: status, status text), `ServiceUnreachableError`, `BadRemoteReplyError`.
 *
 * API version: unless `apiVersion` fixes one, the first call asks `GET /version` and uses the highest
 * version both sides speak (`REGISTRAR_CLIENT_API_VERSIONS`; Keylime `negotiate_version`): Keylime's
 * registrar routes only the versions it knows, so a URL of a newer one is a 404 there. A registrar
 * whose `/version` answers 400, 404 or 405 (older than API 2.3) is spoken to in 2.1; one with no
 * version in common is refused with `ERR_UNSUPPORTED_API_VERSION`. A call refused with "API version
 * not supported" is sent once more after a new `/version` (see `call`).
 */
export class RegistrarClient {
  private readonly http: KeylimeClient;
  private readonly versions: NegotiatedApiVersion;
  /** For messages: the URL the client was given, without a trailing slash. */
  private readonly baseUrl: string;

  constructor(options: RegistrarClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/$/, '');
    this.http = createKeylimeClient({
      baseUrl: options.baseUrl,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    this.versions = new NegotiatedApiVersion({
      service: 'registrar',
      fixed: options.apiVersion,
      local: REGISTRAR_CLIENT_API_VERSIONS,
      askVersions: async () => (await this.http.get('/version')).results,
      predatesVersionRoute: [400, 404, 405],
    });
  }

  /** The API version the client uses (negotiated on first use unless fixed). */
  apiVersion(): Promise<string> {
    return this.versions.current();
  }

  /** `GET /version`. */
  async version(): Promise<RegistrarVersionResults> {
    return (await this.http.get('/version', { results: RegistrarVersionResults })).results;
  }

  /** Registers the agent; resolves to the MakeCredential blob for TPM2_ActivateCredential. */
  async register(agentId: string, registration: AgentRegistration): Promise<Uint8Array> {
    const body: Record<string, unknown> = {
      ek_tpm: base64(registration.ekPublic),
      aik_tpm: base64(registration.akPublic),
    };
    const cert = registration.ekCertificate;
    if (cert !== undefined && cert !== null) {
      body['ekcert'] = typeof cert === 'string' ? cert : base64(cert);
    }
    Object.assign(body, contactFields(registration));
    const reply = await this.versions.call((prefix) => this.http.post(agentPath(prefix, agentId), body, { results: RegisterReplyResults }));
    return Buffer.from(reply.results.blob, 'base64');
  }

  /**
   * Registers a TPM agent like `register`, declaring its mode (`emulated-tpm` is never counted as
   * hardware) and, when known, its host id, so a later registration without the TPM is refused.
   */
  async registerTpm(agentId: string, registration: AgentRegistration, mode: 'tpm' | 'emulated-tpm', hostId?: HostId): Promise<Uint8Array> {
    const body: Record<string, unknown> = {
      identity_mode: mode,
      ek_tpm: base64(registration.ekPublic),
      aik_tpm: base64(registration.akPublic),
      ...(hostId === undefined ? {} : { host_id: `${hostId.kind}:${hostId.value}` }),
      ...contactFields(registration),
    };
    const cert = registration.ekCertificate;
    if (cert !== undefined && cert !== null) {
      body['ekcert'] = typeof cert === 'string' ? cert : base64(cert);
    }
    const reply = await this.versions.call((prefix) => this.http.post(agentPath(prefix, agentId), body, { results: RegisterReplyResults }));
    return Buffer.from(reply.results.blob, 'base64');
  }

  /** Registers a host without a TPM; resolves to the nonce an `id-secret` host must prove its secret for. */
  async registerHost(agentId: string, registration: HostRegistration): Promise<string | undefined> {
    const body: Record<string, unknown> = {
      identity_mode: registration.mode,
      host_id: `${registration.hostId.kind}:${registration.hostId.value}`,
      ...(registration.hostProofKey === undefined ? {} : { host_proof_key: registration.hostProofKey }),
      ...contactFields(registration),
    };
    return (await this.versions.call((prefix) => this.http.post(agentPath(prefix, agentId), body, { results: IdentityRegisterReplyResults }))).results.nonce;
  }

  /** An `id-secret` host's answer to its registration nonce (`lib/identity/host-secret-proof.ts`). */
  async proveHost(agentId: string, proof: string): Promise<void> {
    await this.versions.call((prefix) => this.http.put(`${agentPath(prefix, agentId)}/host-proof`, { host_proof: proof }));
  }

  /** How an active agent registered, its trust level and any refused downgrade (admin, mTLS). */
  async identity(agentId: string): Promise<AgentIdentityReplyResults> {
    return recordOf(agentId, (await this.versions.call((prefix) => this.http.get(`${agentPath(prefix, agentId)}/identity`, { results: AgentIdentityReplyResults }))).results);
  }

  /** Allows the agent's next registration to use `mode` (admin, mTLS): the explicit mode change. */
  async allowModeChange(agentId: string, mode: IdentityMode): Promise<void> {
    await this.versions.call((prefix) => this.http.put(`${agentPath(prefix, agentId)}/identity-mode`, { identity_mode: mode }));
  }

  /** Proves the AK with `auth_tag` = hex(HMAC-SHA384(base64(credential), agentId)) (see lib/tpm/auth-tag.ts). */
  async activate(agentId: string, authTag: string): Promise<void> {
    await this.versions.call((prefix) => this.http.put(agentPath(prefix, agentId), { auth_tag: authTag }));
  }

  /** Ids of every registered agent (admin, mTLS). */
  async list(): Promise<string[]> {
    return (await this.versions.call((prefix) => this.http.get(`${prefix}/agents`, { results: AgentListReplyResults }))).results.uuids;
  }

  /**
   * The record of an activated agent (admin, mTLS); a 404 `KeylimeHttpError` when unknown or inactive.
   * @throws OtherServiceReply when a verifier answers (`refuseOtherServiceReply`); BadRemoteReplyError
   */
  async show(agentId: string): Promise<AgentShowReplyResults> {
    const results = await this.versions.call(async (prefix) => {
      const url = `${this.baseUrl}${agentPath(prefix, agentId)}`;
      const reply = await this.http.get(agentPath(prefix, agentId));
      refuseOtherServiceReply('registrar', url, reply.results);
      try {
        return validateDto(AgentShowReplyResults, reply.results, 'results');
      } catch (error) {
        if (error instanceof RequestValidationError) throw new BadRemoteReplyError(url, error.message, { cause: error });
        throw error;
      }
    });
    return recordOf(agentId, results);
  }

  /**
   * Deletes the agent's record (admin, mTLS). A 404 to the request sent again after the first one's
   * connection was closed under it is done (the client's); to a DELETE sent once, a `KeylimeHttpError`.
   */
  async delete(agentId: string): Promise<void> {
    await this.versions.call((prefix) => this.http.delete(agentPath(prefix, agentId)));
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.http.close();
  }
}

/** `<prefix>/agents/<id>`, the id URL-encoded. */
function agentPath(prefix: string, agentId: string): string {
  return `${prefix}/agents/${encodeURIComponent(agentId)}`;
}

function contactFields(registration: { readonly ip?: string; readonly port?: number; readonly mtlsCert?: string }): Record<string, unknown> {
  return {
    ...(registration.ip === undefined ? {} : { ip: registration.ip }),
    ...(registration.port === undefined ? {} : { port: registration.port }),
    ...(registration.mtlsCert === undefined ? {} : { mtls_cert: registration.mtlsCert }),
  };
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

/**
 * `results` when they are the record of `agentId`. A registrar (or what stands between) answering with
 * another agent's record would lend that agent's trust level, address and keys to this one. Also used
 * on records that did not come through this client (`decodeRegisteredAgent`).
 * @throws BadRemoteReplyError
 */
export function recordOf<T extends { readonly agent_id: string }>(agentId: string, results: T): T {
  if (results.agent_id !== agentId) {
    throw new BadRemoteReplyError(`registrar agent ${agentId}`, `the reply is the record of agent '${results.agent_id}'`);
  }
  return results;
}
