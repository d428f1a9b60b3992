import { KeylimeHttpError, ServiceUnreachableError } from '../http/client-errors.js';
import { Http1ParseError } from '../http/http1-response-parser.js';

/**
 * Runs an enrolment, and once more when its connection was reset or closed before any answer: the
 * verifier had just closed the kept-alive socket the tenant sent the POST on (node's keep-alive race,
 * which a saturated machine makes likely), and the tenant's client does not send a POST twice by
 * itself; or an agent closed a fresh connection before answering (seen on a machine at load 10–17,
 * where the fleet's enrolment then ended the whole benchmark). A
 * "409 exists" on the second attempt, from the very request the reset cut, means the first one had
 * reached the verifier after all: the node is enrolled. A 409 from another request (the reset cut an
 * earlier step, so the first attempt never reached the verifier: someone else enrolled the id), any
 * other failure, or a second reset, is thrown.
 */
export async function enrolOnceMoreAfterReset(enrol: () => Promise<unknown>): Promise<void> {
  let cut: ServiceUnreachableError;
  try {
    await enrol();
    return;
  } catch (error) {
    if (!isConnectionReset(error)) throw error;
    cut = error;
  }
  try {
    await enrol();
  } catch (error) {
    if (!(error instanceof KeylimeHttpError && error.remoteHttpStatus === 409 && error.url === cut.url)) throw error;
  }
}

/** A reset, or a connection closed before a single byte of the answer came. */
function isConnectionReset(error: unknown): error is ServiceUnreachableError {
  if (!(error instanceof ServiceUnreachableError)) return false;
  const cause = error.cause;
  return (cause as { code?: unknown } | undefined)?.code === 'ECONNRESET' || (cause instanceof Http1ParseError && cause.closedBeforeHead);
}
