import { AttestationServiceUnavailable } from '../../interfaces/errors.js';
import { KeylimeHttpError, ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { tlsFailureKind } from '../../lib/http/keylime-transport-errors.js';
import type { KeylimeConnection } from './keylime-connection.js';
import type { KeylimeNodeSettings } from './keylime-driver-info.js';
import { isRetryableStatus } from './retryable-status.js';
import { waitForFinalVerdict } from './status-wait.js';
import { readVerifierAgent, removeVerifierAgent } from './verifier-agent-view.js';

/** DELETE, then (on 202) poll until the verifier has let go of the agent, within the status timeout. */
export async function removeAndWait(connection: KeylimeConnection, agentId: string, settings: KeylimeNodeSettings, signal: AbortSignal): Promise<void> {
  if ((await removeVerifierAgent(connection.verifier, agentId)) === 'deleted') {
    return;
  }
  await waitForFinalVerdict(
    async () => ((await readVerifierAgent(connection.verifier, agentId)) === undefined ? { kind: 'pass' } : { kind: 'pending', why: 'agent still terminating' }),
    {
      timeoutMs: settings.statusTimeoutSeconds * 1000,
      intervalMs: Math.min(settings.statusPollIntervalSeconds * 1000, 500),
      signal,
      isTransient,
    },
  ).catch((error: unknown) => {
    if (error instanceof AttestationServiceUnavailable) {
      throw new AttestationServiceUnavailable(`the verifier did not finish removing agent ${agentId}: ${error.message}`, { cause: error });
    }
    throw error;
  });
}

/**
 * An unreachable or overloaded service may answer on the next poll. A TLS handshake that failed on a
 * certificate or protocol mismatch will fail the same way every time: not transient (issue 11 item 11).
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof ServiceUnreachableError) {
    return tlsFailureKind(error) === undefined;
  }
  return error instanceof KeylimeHttpError && isRetryableStatus(error.remoteHttpStatus);
}
