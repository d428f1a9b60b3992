import { KeylimeHttpError, ServiceUnreachableError } from '../http/client-errors.js';

/**
 * Runs an enrolment, and once more when its connection was reset before any answer: the verifier
 * had just closed the kept-alive socket the tenant sent the POST on (node's keep-alive race, which a
 * saturated machine makes likely), and the tenant's client does not send a POST twice by itself. A
 * "409 exists" on the second attempt means the first one had reached the verifier after all: the
 * node is enrolled. Any other failure, or a second reset, is thrown.
 */
export async function enrolOnceMoreAfterReset(enrol: () => Promise<unknown>): Promise<void> {
  try {
    await enrol();
    return;
  } catch (error) {
    if (!isConnectionReset(error)) throw error;
  }
  try {
    await enrol();
  } catch (error) {
    if (!(error instanceof KeylimeHttpError && error.remoteHttpStatus === 409)) throw error;
  }
}

function isConnectionReset(error: unknown): boolean {
  return error instanceof ServiceUnreachableError && (error.cause as { code?: unknown } | undefined)?.code === 'ECONNRESET';
}
