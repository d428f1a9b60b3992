import { createKeylimeClient, type KeylimeClient, type KeylimeClientTls } from '../http/keylime-client.js';
import {
  MbPolicyNames,
  RuntimePolicyNames,
  StoredMbPolicyResults,
  StoredRuntimePolicyResults,
  VerifierAgentList,
  VerifierAgentStatus,
} from './verifier-reply-dtos.js';

/** Default verifier URL (Keylime `[verifier] port` 8881). */
export const DEFAULT_VERIFIER_URL = 'https://127.0.0.1:8881';

/** The enrolment body of `POST /v2.x/agents/{id}` (spec §4.1), Keylime's field names. */
export interface VerifierEnrolmentBody {
  readonly v: string | null;
  readonly cloudagent_ip: string;
  readonly cloudagent_port: number;
  readonly verifier_ip?: string;
  readonly verifier_port?: number;
  readonly tpm_policy: string;
  readonly runtime_policy: string;
  readonly runtime_policy_name?: string;
  readonly runtime_policy_key?: string;
  readonly mb_policy: string | null;
  readonly mb_policy_name: string;
  readonly ima_sign_verification_keys: string;
  readonly metadata: string;
  readonly revocation_key: string;
  readonly accept_tpm_hash_algs: readonly string[];
  readonly accept_tpm_encryption_algs: readonly string[];
  readonly accept_tpm_signing_algs: readonly string[];
  readonly ak_tpm: string;
  readonly mtls_cert: string;
  readonly supported_version: string;
}

/** One round of an agent's history (ironlime extension `GET /agents/{id}/history`). */
export interface VerifierHistoryEntry {
  readonly id: number;
  readonly agentId: string;
  readonly attemptedAt: number;
  readonly outcome: 'pass' | 'fail' | 'retry';
  readonly nonce: string | null;
  readonly imaMlEntry: number | null;
  readonly imaEntriesReceived: number | null;
  readonly operationalState: number;
  readonly attestationCount: number;
  readonly failures: readonly { event_id: string; severity_label: string; context: Record<string, unknown>; recoverable: boolean }[];
}

export interface VerifierClientOptions {
  /** `https://host:8881`, or `http://…` for a verifier without TLS (no `tls` then). */
  readonly baseUrl: string;
  /** The verifier's CA and, for admin routes, a client certificate + key from it. */
  readonly tls?: KeylimeClientTls;
  /** API version in the URLs; default 2.5 (`verify/evidence` with `valid` as a boolean). */
  readonly apiVersion?: string;
  readonly timeoutMs?: number;
}

/**
 * A typed HTTP client for a Keylime-compatible verifier (ours, or Keylime's for the Keylime routes).
 * Every method resolves on a 2xx reply or throws the shell's typed errors: `KeylimeHttpError` (the
 * verifier refused: 404 unknown agent, 409 exists, 400 bad field), `ServiceUnreachableError`,
 * `BadRemoteReplyError`.
 */
export class VerifierClient {
  private readonly http: KeylimeClient;
  private readonly prefix: string;

  constructor(options: VerifierClientOptions) {
    this.http = createKeylimeClient({
      baseUrl: options.baseUrl,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    this.prefix = `/v${options.apiVersion ?? '2.5'}`;
  }

  /** `GET /version`. */
  async version(): Promise<unknown> {
    return (await this.http.get('/version')).results;
  }

  /** `POST /agents/{id}`. */
  async addAgent(agentId: string, body: VerifierEnrolmentBody): Promise<void> {
    await this.http.post(this.agentPath(agentId), body);
  }

  /** `GET /agents/{id}`. */
  async status(agentId: string): Promise<VerifierAgentStatus> {
    return (await this.http.get(this.agentPath(agentId), { results: VerifierAgentStatus })).results;
  }

  /**
   * `GET /agents/{id}` results as received, unvalidated: for callers that read the differing replies of
   * Keylime releases (and push agents without `operational_state`) field by field.
   */
  async rawStatus(agentId: string): Promise<unknown> {
    return (await this.http.get(this.agentPath(agentId))).results;
  }

  /** `GET /agents[?verifier=]`: ids (Keylime's nested `[[id], …]` form flattened). */
  async list(verifierId?: string): Promise<string[]> {
    const reply = await this.http.get(`${this.prefix}/agents`, {
      ...(verifierId === undefined ? {} : { query: { verifier: verifierId } }),
      results: VerifierAgentList,
    });
    return reply.results.uuids.map((id) => (Array.isArray(id) ? String(id[0]) : String(id)));
  }

  /** `GET /agents?bulk`: every agent's status by id (not validated per agent). */
  async bulkStatus(verifierId?: string): Promise<Record<string, unknown>> {
    const reply = await this.http.get(`${this.prefix}/agents`, { query: { bulk: '', ...(verifierId === undefined ? {} : { verifier: verifierId }) } });
    return (reply.results ?? {}) as Record<string, unknown>;
  }

  /** `DELETE /agents/{id}`: `deleted` (200) or `terminating` (202, the loop deletes it next). */
  async delete(agentId: string): Promise<'deleted' | 'terminating'> {
    const reply = await this.http.delete(this.agentPath(agentId));
    return reply.code === 202 ? 'terminating' : 'deleted';
  }

  /** `PUT /agents/{id}/reactivate`. */
  async reactivate(agentId: string): Promise<void> {
    await this.http.put(`${this.agentPath(agentId)}/reactivate`, {});
  }

  /** `PUT /agents/{id}/stop`. */
  async stop(agentId: string): Promise<void> {
    await this.http.put(`${this.agentPath(agentId)}/stop`, {});
  }

  /** `GET /agents/{id}/history?limit=` (ironlime only), newest first. */
  async history(agentId: string, limit = 100): Promise<VerifierHistoryEntry[]> {
    const reply = await this.http.get(`${this.agentPath(agentId)}/history`, { query: { limit } });
    return ((reply.results as { history?: VerifierHistoryEntry[] }).history ?? []) as VerifierHistoryEntry[];
  }

  /** `POST /allowlists/{name}`: `runtimePolicy` is the policy text (JSON, DSSE envelope or flat allowlist). */
  async addRuntimePolicy(name: string, runtimePolicy: string, options: { keyPem?: string; update?: boolean } = {}): Promise<void> {
    const body = {
      runtime_policy: Buffer.from(runtimePolicy, 'utf8').toString('base64'),
      ...(options.keyPem === undefined ? {} : { runtime_policy_key: Buffer.from(options.keyPem, 'utf8').toString('base64') }),
    };
    const path = `${this.prefix}/allowlists/${encodeURIComponent(name)}`;
    await (options.update === true ? this.http.put(path, body) : this.http.post(path, body));
  }

  async showRuntimePolicy(name: string): Promise<StoredRuntimePolicyResults> {
    return (await this.http.get(`${this.prefix}/allowlists/${encodeURIComponent(name)}`, { results: StoredRuntimePolicyResults })).results;
  }

  async listRuntimePolicies(): Promise<string[]> {
    return (await this.http.get(`${this.prefix}/allowlists`, { results: RuntimePolicyNames })).results['runtimepolicy names'];
  }

  async deleteRuntimePolicy(name: string): Promise<void> {
    await this.http.delete(`${this.prefix}/allowlists/${encodeURIComponent(name)}`);
  }

  /** `POST /mbpolicies/{name}` with the refstate JSON text. */
  async addMbPolicy(name: string, refstate: string, options: { update?: boolean } = {}): Promise<void> {
    const path = `${this.prefix}/mbpolicies/${encodeURIComponent(name)}`;
    await (options.update === true ? this.http.put(path, { mb_policy: refstate }) : this.http.post(path, { mb_policy: refstate }));
  }

  async showMbPolicy(name: string): Promise<StoredMbPolicyResults> {
    return (await this.http.get(`${this.prefix}/mbpolicies/${encodeURIComponent(name)}`, { results: StoredMbPolicyResults })).results;
  }

  async listMbPolicies(): Promise<string[]> {
    return (await this.http.get(`${this.prefix}/mbpolicies`, { results: MbPolicyNames })).results['mbpolicy names'];
  }

  async deleteMbPolicy(name: string): Promise<void> {
    await this.http.delete(`${this.prefix}/mbpolicies/${encodeURIComponent(name)}`);
  }

  /** `GET /verify/identity` (public). */
  async verifyIdentity(query: { agentId: string; quote: string; nonce: string; hashAlg: string }): Promise<{ valid: number; reason?: string }> {
    const reply = await this.http.get(`${this.prefix}/verify/identity`, {
      query: { agent_uuid: query.agentId, quote: query.quote, nonce: query.nonce, hash_alg: query.hashAlg },
    });
    return reply.results as { valid: number; reason?: string };
  }

  /** `POST /verify/evidence` (public), `type: "tpm"`; `data` with Keylime's field names. */
  async verifyEvidence(data: Record<string, unknown>): Promise<{ valid: boolean; claims: unknown; failures: { type: string; context: unknown }[] }> {
    const reply = await this.http.post(`${this.prefix}/verify/evidence`, { type: 'tpm', data });
    return reply.results as { valid: boolean; claims: unknown; failures: { type: string; context: unknown }[] };
  }

  close(): void {
    this.http.close();
  }

  private agentPath(agentId: string): string {
    return `${this.prefix}/agents/${encodeURIComponent(agentId)}`;
  }
}
