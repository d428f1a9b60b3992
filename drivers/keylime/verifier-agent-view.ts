import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import type { VerifierClient } from '../../lib/verifier/verifier-client.js';
import type { VerifierAgentView } from '../../lib/attestation/operator-decision.js';

/** The verifier's record of an agent, as far as the driver reads it. */
export interface VerifierAgent extends VerifierAgentView {
  /** The enrolment's `metadata` JSON text (`meta_data`), where the driver keeps its policy fingerprint. */
  readonly metaData: string;
}

/**
 * `GET /agents/{id}` through the tenant's `VerifierClient`; undefined when the verifier does not know the
 * agent (404). The reply is read leniently — a missing field takes a neutral value — because Keylime
 * releases differ in what they return (a push agent has no `operational_state`).
 */
export async function readVerifierAgent(verifier: VerifierClient, agentId: string): Promise<VerifierAgent | undefined> {
  try {
    return readAgent(await verifier.rawStatus(agentId));
  } catch (error) {
    if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) {
      return undefined;
    }
    throw error;
  }
}

/**
 * `DELETE /agents/{id}`: `deleted` (200, or 404: nothing to delete) or `terminating` (202: the pull loop
 * removes it on its next tick; poll `readVerifierAgent` until it is gone).
 */
export async function removeVerifierAgent(verifier: VerifierClient, agentId: string): Promise<'deleted' | 'terminating'> {
  try {
    return await verifier.delete(agentId);
  } catch (error) {
    if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) {
      return 'deleted';
    }
    throw error;
  }
}

/**
 * Failures of the agent's recent rounds from ironlime's `GET /agents/{id}/history` extension: event ids
 * and readable contexts. Real Keylime has no such route; any error gives empty lists.
 */
export async function recentFailures(verifier: VerifierClient, agentId: string, limit = 20): Promise<{ eventIds: string[]; reasons: string[] }> {
  const eventIds: string[] = [];
  const reasons: string[] = [];
  try {
    const history: unknown = await verifier.history(agentId, limit);
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
    lastSuccessfulAttestation: nonNegativeNumber(record['last_successful_attestation']),
    attestationPeriodSeconds: periodSeconds(record['attestation_period']),
    trusted: typeof record['trusted'] === 'boolean' ? record['trusted'] : undefined,
    freshnessBoundSeconds: positive(record['freshness_bound']),
    metaData: typeof record['meta_data'] === 'string' ? record['meta_data'] : '',
  };
}

function nonNegative(value: unknown): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : 0;
}

function nonNegativeNumber(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0;
}

function positive(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}

/** Keylime's `attestation_period` (`"2s"`, `"0.5s"`; API ≥ 2.5) in seconds, or undefined. */
function periodSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return positive(value);
  }
  const match = typeof value === 'string' ? /^(\d{1,9}(?:\.\d{1,6})?)s$/.exec(value.trim()) : null;
  return match === null ? undefined : positive(Number(match[1]));
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
