import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import type { VerifierClient } from '../../lib/verifier/verifier-client.js';
import { verifierAgentOf, type VerifierAgent } from '../../lib/verifier/verifier-status-view.js';

/**
 * `GET /agents/{id}` through the tenant's `VerifierClient`; undefined when the verifier does not know the
 * agent (404). The reply is validated by `verifierAgentOf`: a missing field takes a neutral value,
 * because Keylime releases differ in what they return; a field of the wrong type is refused.
 */
export async function readVerifierAgent(verifier: VerifierClient, agentId: string): Promise<VerifierAgent | undefined> {
  return (await readVerifierAgentAt(verifier, agentId))?.agent;
}

/** `readVerifierAgent` with the verifier's clock when it answered (unix seconds), when its reply carried a `Date` header. */
export async function readVerifierAgentAt(verifier: VerifierClient, agentId: string): Promise<{ readonly agent: VerifierAgent; readonly verifierTime: number | undefined } | undefined> {
  try {
    const { results, verifierTime } = await verifier.rawStatusAt(agentId);
    return { agent: verifierAgentOf(agentId, results), verifierTime };
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
 * and readable contexts, at most `limit` of each — the verifier is asked for `limit` rounds, but a reply
 * with more (or rounds of thousands of failures) must not turn into megabytes of reasons stored on the
 * node and logged. Real Keylime has no such route; any error gives empty lists.
 */
export async function recentFailures(verifier: VerifierClient, agentId: string, limit = 20): Promise<{ eventIds: string[]; reasons: string[] }> {
  const eventIds = new Set<string>();
  const reasons = new Set<string>();
  try {
    const history: unknown = await verifier.history(agentId, limit);
    for (const entry of Array.isArray(history) ? history : []) {
      const failures = (entry as { failures?: unknown }).failures;
      for (const failure of Array.isArray(failures) ? failures : []) {
        const { event_id: eventId, context } = failure as { event_id?: unknown; context?: unknown };
        if (typeof eventId === 'string' && reasons.size < limit) {
          eventIds.add(eventId);
          reasons.add(`${eventId}: ${contextText(context)}`);
        }
      }
    }
  } catch {
    return { eventIds: [], reasons: [] };
  }
  return { eventIds: [...eventIds], reasons: [...reasons] };
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
