import type { AgentAttestationState } from '../agent-state.js';
import type { Failure } from './failure.js';
import { mostSevere, type SeverityPolicy } from '../severity.js';

export interface FailureRecord {
  /** `severityLevel` / `lastEventId` after the round. */
  readonly severityLevel: number | null;
  readonly lastEventId: string | null;
  /** True when polling must stop: an irrecoverable failure, or one at the maximum severity (spec §6.2.6). */
  readonly stopPolling: boolean;
}

/**
 * Keylime's bookkeeping after a failed round (cloud_verifier_tornado `process_agent`; spec §6.2 step 6):
 * the agent's `severity_level` and `last_event_id` change only when the new failure is more severe than
 * the recorded one; polling stops when any event is irrecoverable or the most severe one has the
 * maximum label. With no failures nothing changes and polling goes on. The pull loop also uses this for
 * its own `internal.verifier.*` failures (agent unreachable, no quote).
 */
export function recordFailures(
  state: Pick<AgentAttestationState, 'severityLevel' | 'lastEventId'>,
  failures: readonly Failure[],
  policy: SeverityPolicy,
): FailureRecord {
  const highest = mostSevere(failures);
  if (highest === undefined) {
    return { severityLevel: state.severityLevel, lastEventId: state.lastEventId, stopPolling: false };
  }
  const moreSevere = state.severityLevel === null || highest.severityLevel > state.severityLevel;
  return {
    severityLevel: moreSevere ? highest.severityLevel : state.severityLevel,
    lastEventId: moreSevere ? highest.eventId : state.lastEventId,
    stopPolling: failures.some((failure) => !failure.recoverable) || highest.severityLevel === policy.maxLevel,
  };
}
