import { BadRemoteReplyError } from '../http/client-errors.js';
import { validateDto } from '../http/dto-validation.js';
import { RequestValidationError } from '../http/http-errors.js';
import { createKeylimeClient, type KeylimeClient } from '../http/keylime-client.js';
import type { KeylimeClientTls } from '../http/keylime-client-tls.js';
import { NegotiatedApiVersion } from '../http/negotiated-api-version.js';
import { refuseOtherServiceReply } from '../http/other-service-reply.js';
import {
  MbPolicyNames,
  RuntimePolicyNames,
  StoredMbPolicyResults,
  StoredRuntimePolicyResults,
  VerifierAgentList,
  VerifierAgentStatus,
} from './verifier-client-replies.js';

/** Default verifier URL (Keylime `[verifier] port` 8881). */
export const DEFAULT_VERIFIER_URL = 'https://127.0.0.1:8881';

/**
 * Verifier API versions this client speaks (spec §0.2): from 2.1 (`ak_tpm` and `mtls_cert` in the
 * enrolment) to 2.6. `verify/identity` needs 2.2, the `mbpolicies` store 2.3, `verify/evidence` 2.4.
 */
export const VERIFIER_CLIENT_API_VERSIONS: readonly string[] = ['2.1', '2.2', '2.3', '2.4', '2.5', '2.6'];

/** The enrolment body of `POST /v2.x/agents/{id}` (spec §4.1), Keylime's field names. */
export interface VerifierEnrolmentBody {
  readonly v: string | null;
  /** `push`: the agent attests itself (no address, port or mTLS certificate). */
  readonly attestation_mode?: 'pull' | 'push';
  readonly cloudagent_ip?: string;
  readonly cloudagent_port?: number;
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
  readonly mtls_cert?: string;
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
  /** Failures of the round left out of `failures` (its first 100 are kept), and their distinct event ids; absent when none were. */
  readonly failuresOmitted?: number;
  readonly omittedEventIds?: readonly string[];
}

/** One page of an agent's history; `nextBefore` (the verifier's `next_before`): older rows go on from there. */
export interface VerifierHistoryPage {
  readonly history: VerifierHistoryEntry[];
  readonly nextBefore?: number;
}

/** `POST /verify/evidence` results; `valid` is a boolean whatever the API version (1/0 before 2.5). */
export interface VerifyEvidenceResults {
  readonly valid: boolean;
  readonly claims: unknown;
  readonly failures: { type: string; context: unknown }[];
}

export interface VerifierClientOptions {
  /** `https://host:8881`, or `http://…` for a verifier without TLS (no `tls` then). */
  readonly baseUrl: string;
  /** The verifier's CA and, for admin routes, a client certificate + key from it. */
  readonly tls?: KeylimeClientTls;
  /** A fixed API version for the URLs; without it the client negotiates (see the class comment). */
  readonly apiVersion?: string;
  readonly timeoutMs?: number;
  /** Largest reply read (the client's default otherwise, 64 MiB). */
  readonly maxResponseBytes?: number;
}

/**
 * A typed HTTP client for a Keylime-compatible verifier (ours, or Keylime's for the Keylime routes).
 *
 * API version: unless `apiVersion` fixes one, the first call asks `GET /version` and uses the highest
 * version both sides speak (`VERIFIER_CLIENT_API_VERSIONS`; Keylime `negotiate_version`). A verifier
 * without `/version` (404/410) is spoken to in 2.1. When a call is refused with "API version not
 * supported" (the verifier was replaced by an older one), the client asks `/version` again and, if
 * that gives another version, retries the call once with it.
 *
 * Every method resolves on a 2xx reply or throws the shell's typed errors: `KeylimeHttpError` (the
 * verifier refused: 404 unknown agent, 409 exists, 400 bad field), `ServiceUnreachableError`,
 * `BadRemoteReplyError`, or `ERR_UNSUPPORTED_API_VERSION` when no version is common.
 */
export class VerifierClient {
  readonly #http: KeylimeClient;
  readonly #versions: NegotiatedApiVersion;
  /** For messages: the URL the client was given, without a trailing slash. */
  readonly #baseUrl: string;

  constructor(options: VerifierClientOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/$/, '');
    this.#http = createKeylimeClient({
      baseUrl: options.baseUrl,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.maxResponseBytes === undefined ? {} : { maxResponseBytes: options.maxResponseBytes }),
    });
    this.#versions = new NegotiatedApiVersion({
      service: 'verifier',
      fixed: options.apiVersion,
      local: VERIFIER_CLIENT_API_VERSIONS,
      askVersions: () => this.version(),
      // No `/version`: 404, or 410 as Keylime's push verifier answers.
      predatesVersionRoute: [404, 410],
    });
  }

  /** `GET /version` results, as received. */
  async version(): Promise<unknown> {
    return (await this.#http.get('/version')).results;
  }

  /** The API version the client uses (negotiated on first use unless fixed). */
  apiVersion(): Promise<string> {
    return this.#versions.current();
  }

  /** `POST /agents/{id}`. */
  async addAgent(agentId: string, body: VerifierEnrolmentBody): Promise<void> {
    await this.#versions.call((p) => this.#http.post(agentPath(p, agentId), body));
  }

  /** `GET /agents/{id}`. @throws BadRemoteReplyError for a registrar's record (`refuseOtherServiceReply`) */
  async status(agentId: string): Promise<VerifierAgentStatus> {
    return this.#versions.call(async (p) => {
      const url = `${this.#baseUrl}${agentPath(p, agentId)}`;
      const { results } = await this.#http.get(agentPath(p, agentId));
      refuseOtherServiceReply('verifier', url, results);
      try {
        return validateDto(VerifierAgentStatus, results, 'results');
      } catch (error) {
        if (error instanceof RequestValidationError) throw new BadRemoteReplyError(url, error.message, { cause: error });
        throw error;
      }
    });
  }

  /**
   * `GET /agents/{id}` results as received, unvalidated: for callers that read the differing replies of
   * Keylime releases (and push agents without `operational_state`) field by field.
   */
  async rawStatus(agentId: string): Promise<unknown> {
    return (await this.rawStatusAt(agentId)).results;
  }

  /**
   * `rawStatus` with the verifier's clock when it answered (its reply's `Date` header, unix seconds), when it sent one.
   * @throws BadRemoteReplyError for a registrar's record (`refuseOtherServiceReply`)
   */
  async rawStatusAt(agentId: string): Promise<{ readonly results: unknown; readonly verifierTime: number | undefined }> {
    const reply = await this.#versions.call(async (p) => {
      const answer = await this.#http.get(agentPath(p, agentId), { serverTime: true });
      refuseOtherServiceReply('verifier', `${this.#baseUrl}${agentPath(p, agentId)}`, answer.results);
      return answer;
    });
    return { results: reply.results, verifierTime: reply.serverTime };
  }

  /** `GET /agents[?verifier=]`: ids (Keylime's nested `[[id], …]` form flattened). */
  async list(verifierId?: string): Promise<string[]> {
    const query = verifierId === undefined ? {} : { query: { verifier: verifierId } };
    const reply = await this.#versions.call((p) => this.#http.get(`${p}/agents`, { ...query, results: VerifierAgentList }));
    return reply.results.uuids.map((id) => (Array.isArray(id) ? id[0] : id));
  }

  /** `GET /agents?bulk`: every agent's status by id (not validated per agent). */
  async bulkStatus(verifierId?: string): Promise<Record<string, unknown>> {
    const query = { bulk: '', ...(verifierId === undefined ? {} : { verifier: verifierId }) };
    const reply = await this.#versions.call((p) => this.#http.get(`${p}/agents`, { query }));
    return (reply.results ?? {}) as Record<string, unknown>;
  }

  /**
   * `DELETE /agents/{id}`: `deleted` (200; or 404 to the request sent again after the first one's
   * connection was closed under it: the first one deleted it, the client's) or `terminating` (202, the
   * loop deletes it next). A 404 to a DELETE sent once is a `KeylimeHttpError`.
   */
  async delete(agentId: string): Promise<'deleted' | 'terminating'> {
    const reply = await this.#versions.call((p) => this.#http.delete(agentPath(p, agentId)));
    return reply.code === 202 ? 'terminating' : 'deleted';
  }

  /** `PUT /agents/{id}/reactivate`. */
  async reactivate(agentId: string): Promise<void> {
    await this.#versions.call((p) => this.#http.put(`${agentPath(p, agentId)}/reactivate`, {}));
  }

  /** `PUT /agents/{id}/stop`. */
  async stop(agentId: string): Promise<void> {
    await this.#versions.call((p) => this.#http.put(`${agentPath(p, agentId)}/stop`, {}));
  }

  /**
   * The newest `limit` rounds older than history id `before` (from the newest without it), newest
   * first, read page after page (`historyPage`) until `limit` rows or a page with no next one.
   * @throws BadRemoteReplyError for a `next_before` that does not move back
   */
  async history(agentId: string, limit = 100, before?: number): Promise<VerifierHistoryEntry[]> {
    const rows: VerifierHistoryEntry[] = [];
    let next = before;
    for (;;) {
      const page = await this.historyPage(agentId, { limit: limit - rows.length, before: next });
      rows.push(...page.history.slice(0, limit - rows.length));
      if (page.nextBefore === undefined || rows.length >= limit) return rows;
      next = page.nextBefore;
    }
  }

  /**
   * `GET /agents/{id}/history?limit=&before=` (ironlime only): one page, newest first. An ironlime
   * verifier ends a page early at its byte bound and says where the next one starts (`next_before`);
   * a verifier without the field has no more pages.
   * @throws BadRemoteReplyError for a `next_before` that would not move back: not a history id,
   *   not below `before`, or on an empty page (a client following it would never end)
   */
  async historyPage(agentId: string, options: { readonly limit?: number; readonly before?: number } = {}): Promise<VerifierHistoryPage> {
    const query = { limit: options.limit ?? 100, ...(options.before === undefined ? {} : { before: options.before }) };
    const reply = await this.#versions.call((p) => this.#http.get(`${agentPath(p, agentId)}/history`, { query }));
    const results = reply.results as { history?: unknown; next_before?: unknown };
    const history = results.history ?? [];
    if (!Array.isArray(history)) throw new BadRemoteReplyError(`verifier history of ${agentId}`, 'history is not a list');
    const nextBefore = results.next_before;
    if (nextBefore === undefined) return { history: history as VerifierHistoryEntry[] };
    const movesBack = Number.isSafeInteger(nextBefore) && (nextBefore as number) >= 1 && (options.before === undefined || (nextBefore as number) < options.before);
    if (!movesBack || history.length === 0) {
      throw new BadRemoteReplyError(`verifier history of ${agentId}`, `next_before ${JSON.stringify(nextBefore)} does not start an older page`);
    }
    return { history: history as VerifierHistoryEntry[], nextBefore: nextBefore as number };
  }

  /** `POST /allowlists/{name}`: `runtimePolicy` is the policy text (JSON, DSSE envelope or flat allowlist). */
  async addRuntimePolicy(name: string, runtimePolicy: string, options: { keyPem?: string; update?: boolean } = {}): Promise<void> {
    const body = {
      runtime_policy: Buffer.from(runtimePolicy, 'utf8').toString('base64'),
      ...(options.keyPem === undefined ? {} : { runtime_policy_key: Buffer.from(options.keyPem, 'utf8').toString('base64') }),
    };
    await this.#versions.call((p) => {
      const path = namedPath(p, 'allowlists', name);
      return options.update === true ? this.#http.put(path, body) : this.#http.post(path, body);
    });
  }

  async showRuntimePolicy(name: string): Promise<StoredRuntimePolicyResults> {
    return (await this.#versions.call((p) => this.#http.get(namedPath(p, 'allowlists', name), { results: StoredRuntimePolicyResults }))).results;
  }

  async listRuntimePolicies(): Promise<string[]> {
    return (await this.#versions.call((p) => this.#http.get(`${p}/allowlists`, { results: RuntimePolicyNames }))).results['runtimepolicy names'];
  }

  /** `DELETE /allowlists/{name}`; a 404 answering a resend is done (the client's). */
  async deleteRuntimePolicy(name: string): Promise<void> {
    await this.#versions.call((p) => this.#http.delete(namedPath(p, 'allowlists', name)));
  }

  /** `POST /mbpolicies/{name}` with the refstate JSON text. */
  async addMbPolicy(name: string, refstate: string, options: { update?: boolean } = {}): Promise<void> {
    await this.#versions.call((p) => {
      const path = namedPath(p, 'mbpolicies', name);
      return options.update === true ? this.#http.put(path, { mb_policy: refstate }) : this.#http.post(path, { mb_policy: refstate });
    });
  }

  async showMbPolicy(name: string): Promise<StoredMbPolicyResults> {
    return (await this.#versions.call((p) => this.#http.get(namedPath(p, 'mbpolicies', name), { results: StoredMbPolicyResults }))).results;
  }

  async listMbPolicies(): Promise<string[]> {
    return (await this.#versions.call((p) => this.#http.get(`${p}/mbpolicies`, { results: MbPolicyNames }))).results['mbpolicy names'];
  }

  /** `DELETE /mbpolicies/{name}`; a 404 answering a resend is done (the client's). */
  async deleteMbPolicy(name: string): Promise<void> {
    await this.#versions.call((p) => this.#http.delete(namedPath(p, 'mbpolicies', name)));
  }

  /** `GET /verify/identity` (public). */
  async verifyIdentity(query: { agentId: string; quote: string; nonce: string; hashAlg: string }): Promise<{ valid: number; reason?: string }> {
    const params = { agent_uuid: query.agentId, quote: query.quote, nonce: query.nonce, hash_alg: query.hashAlg };
    const reply = await this.#versions.call((p) => this.#http.get(`${p}/verify/identity`, { query: params }));
    return reply.results as { valid: number; reason?: string };
  }

  /** `POST /verify/evidence` (public), `type: "tpm"`; `data` with Keylime's field names. */
  async verifyEvidence(data: Record<string, unknown>): Promise<VerifyEvidenceResults> {
    const reply = await this.#versions.call((p) => this.#http.post(`${p}/verify/evidence`, { type: 'tpm', data }));
    const results = reply.results as { valid: unknown; claims: unknown; failures: { type: string; context: unknown }[] };
    return { ...results, valid: results.valid === true || results.valid === 1 };
  }

  close(): void {
    this.#http.close();
  }
}

function agentPath(prefix: string, agentId: string): string {
  return `${prefix}/agents/${encodeURIComponent(agentId)}`;
}

function namedPath(prefix: string, store: 'allowlists' | 'mbpolicies', name: string): string {
  return `${prefix}/${store}/${encodeURIComponent(name)}`;
}
