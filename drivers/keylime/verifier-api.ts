import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import type { KeylimeClient } from '../../lib/http/keylime-client.js';
import type { VerifierAgentView } from './status-verdict.js';

/** Keylime verifier API version the driver speaks (2.1 added `ak_tpm`/`mtls_cert` to enrolment). */
export const VERIFIER_API_VERSION = '2.1';

/** The enrolment body (spec §4.1, Keylime tenant `do_cvadd`), as sent. */
export interface EnrolmentBody {
  readonly v: null;
  readonly cloudagent_ip: string;
  readonly cloudagent_port: number;
  readonly tpm_policy: string;
  readonly runtime_policy: string;
  readonly runtime_policy_name: string;
  readonly runtime_policy_key: string;
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

/** The verifier's record of an agent, as far as the driver reads it. */
export interface VerifierAgent extends VerifierAgentView {
  /** The enrolment's `metadata` JSON text (`meta_data`), where the driver keeps its policy fingerprint. */
  readonly metaData: string;
}

/**
 * The four verifier calls the driver makes, over a `KeylimeClient` (which maps transport failures and
 * non-2xx answers to typed errors). Replies are read leniently — a missing field takes a neutral value —
 * because Keylime releases differ in what `GET /agents/{id}` returns.
 */
export class VerifierApi {
  private readonly prefix = `/v${VERIFIER_API_VERSION}`;

  constructor(private readonly http: KeylimeClient) {}

  /** `GET /agents/{id}`; undefined when the verifier does not know the agent (404). */
  async agent(agentId: string): Promise<VerifierAgent | undefined> {
    try {
      const reply = await this.http.get(this.path(agentId));
      return readAgent(reply.results);
    } catch (error) {
      if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) {
        return undefined;
      }
      throw error;
    }
  }

  /** `POST /agents/{id}`. */
  async enrol(agentId: string, body: EnrolmentBody): Promise<void> {
    await this.http.post(this.path(agentId), body);
  }

  /**
   * `DELETE /agents/{id}`: `deleted` (200, or 404: nothing to delete) or `terminating` (202: the pull
   * loop removes it on its next tick; poll `agent()` until it is gone).
   */
  async remove(agentId: string): Promise<'deleted' | 'terminating'> {
    try {
      const reply = await this.http.delete(this.path(agentId));
      return reply.code === 202 ? 'terminating' : 'deleted';
    } catch (error) {
      if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) {
        return 'deleted';
      }
      throw error;
    }
  }

  /**
   * Failures of the agent's recent rounds from ironlime's `GET /agents/{id}/history` extension: event
   * ids and readable contexts. Real Keylime has no such route; any error gives empty lists.
   */
  async recentFailures(agentId: string, limit = 20): Promise<{ eventIds: string[]; reasons: string[] }> {
    const eventIds: string[] = [];
    const reasons: string[] = [];
    try {
      const reply = await this.http.get(`${this.path(agentId)}/history`, { query: { limit } });
      const history = (reply.results as { history?: unknown }).history;
      for (const entry of Array.isArray(history) ? history : []) {
        const failures = (entry as { failures?: unknown }).failures;
        for (const failure of Array.isArray(failures) ? failures : []) {
          const { event_id: eventId, context } = failure as { event_id?: unknown; context?: unknown };
          if (typeof eventId === 'string') {
            eventIds.push(eventId);
            reasons.push(`${eventId}: ${contextText(context)}`);
          }
        }
      }
    } catch {
      return { eventIds: [], reasons: [] };
    }
    return { eventIds: [...new Set(eventIds)], reasons: [...new Set(reasons)] };
  }

  private path(agentId: string): string {
    return `${this.prefix}/agents/${encodeURIComponent(agentId)}`;
  }
}

function readAgent(results: unknown): VerifierAgent {
  const record = (typeof results === 'object' && results !== null ? results : {}) as Record<string, unknown>;
  const state = record['operational_state'];
  return {
    operationalState: typeof state === 'number' && Number.isInteger(state) ? state : null,
    attestationCount: nonNegative(record['attestation_count']),
    attestationStatus: typeof record['attestation_status'] === 'string' ? record['attestation_status'] : undefined,
    lastEventId: typeof record['last_event_id'] === 'string' ? record['last_event_id'] : null,
    severityLevel: typeof record['severity_level'] === 'number' ? record['severity_level'] : null,
    failureEventIds: [],
    failureReasons: [],
    metaData: typeof record['meta_data'] === 'string' ? record['meta_data'] : '',
  };
}

function nonNegative(value: unknown): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : 0;
}

/** A failure context as one line: its `message` when it has one, else compact JSON, bounded. */
function contextText(context: unknown): string {
  let text: string;
  if (typeof context === 'object' && context !== null && typeof (context as { message?: unknown }).message === 'string') {
    text = (context as { message: string }).message;
  } else {
    text = typeof context === 'string' ? context : JSON.stringify(context ?? {});
  }
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}
