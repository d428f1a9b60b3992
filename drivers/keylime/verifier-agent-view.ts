import { AttestationFailed } from '../../interfaces/errors.js';
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
 * agent (404). A missing field takes a neutral value, because Keylime releases differ in what they
 * return (a push agent has no `operational_state`); a field of the wrong type is refused (`readAgent`).
 */
export async function readVerifierAgent(verifier: VerifierClient, agentId: string): Promise<VerifierAgent | undefined> {
  try {
    return readAgent(agentId, await verifier.rawStatus(agentId));
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

/**
 * The reply's fields, typed. An absent or null field takes a neutral value; a field of the wrong type
 * (`trusted: "false"`, `attestation_status: 0`) is never read as absent: the status is refused.
 *
 * @throws AttestationFailed naming every wrongly typed field.
 */
function readAgent(agentId: string, results: unknown): VerifierAgent {
  if (typeof results !== 'object' || results === null || Array.isArray(results)) {
    throw new AttestationFailed([`the verifier status of agent ${agentId} is not a JSON object: not trusted`]);
  }
  const record = results as Record<string, unknown>;
  const wrong: string[] = [];
  const read = <T>(name: string, expected: string, accept: (value: unknown) => T | undefined): T | undefined => {
    const value = record[name];
    if (value === undefined || value === null) {
      return undefined;
    }
    const typed = accept(value);
    if (typed === undefined) {
      wrong.push(`${name} must be ${expected}, got ${JSON.stringify(value).slice(0, 40)}`);
    }
    return typed;
  };
  const agent: VerifierAgent = {
    operationalState: read('operational_state', 'a state code', nonNegativeInteger) ?? null,
    attestationCount: read('attestation_count', 'a count', nonNegativeInteger) ?? 0,
    attestationStatus: read('attestation_status', 'a string', text),
    lastEventId: read('last_event_id', 'a string', text) ?? null,
    severityLevel: read('severity_level', 'an integer', nonNegativeInteger) ?? null,
    failureEventIds: [],
    failureReasons: [],
    lastSuccessfulAttestation: read('last_successful_attestation', 'unix seconds', nonNegativeNumber) ?? 0,
    attestationPeriodSeconds: read('attestation_period', 'a period such as "2s"', periodSeconds),
    trusted: read('trusted', 'a boolean', (value) => (typeof value === 'boolean' ? value : undefined)),
    freshnessBoundSeconds: read('freshness_bound', 'a positive number of seconds', positive),
    metaData: read('meta_data', 'a string', text) ?? '',
  };
  if (wrong.length > 0) {
    throw new AttestationFailed([`the verifier status of agent ${agentId} has wrongly typed fields (${wrong.join('; ')}): not trusted`]);
  }
  return agent;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function nonNegativeNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function nonNegativeInteger(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
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
