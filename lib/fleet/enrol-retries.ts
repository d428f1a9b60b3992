import { KeylimeHttpError, ServiceUnreachableError } from '../http/client-errors.js';
import { Http1ParseError } from '../http/http1-response-parser.js';
import { abortableDelay } from '../timing/abortable-delay.js';

/**
 * Waits before each enrolment sent again after a timeout: a host loaded enough that one request waited
 * past the tenant's 30 s is given time to drain before the next (one such timeout ended the whole
 * verifier benchmark during its fleet set-up).
 */
export const ENROLMENT_TIMEOUT_BACKOFF_MS: readonly number[] = [5_000, 15_000, 30_000];

export interface EnrolmentRetries {
  /** The wait before each resend after a timeout; their count is the number of such resends (default `ENROLMENT_TIMEOUT_BACKOFF_MS`). */
  readonly timeoutBackoffMs?: readonly number[];
  /** Ends a back-off wait early, rejecting with the signal's reason. */
  readonly signal?: AbortSignal;
}

/**
 * Runs an enrolment, and sends it again when one of its requests was cut before an answer:
 * - once at once, after a reset or a connection closed before any answer: the verifier had just closed
 *   the kept-alive socket the tenant sent the POST on (node's keep-alive race, which a saturated
 *   machine makes likely), and the tenant's client does not send a POST twice by itself; or an agent
 *   closed a fresh connection before answering (seen on a machine at load 10–17);
 * - up to `timeoutBackoffMs.length` times, after each wait in turn, after a timeout (the tenant's client
 *   gave up on a loaded host; the tenant CLI itself never retries).
 * A "409 exists" on a later attempt, from a URL whose request was cut before, means that request had
 * reached the verifier after all: the node is enrolled. A 409 from another request (the cut was of an
 * earlier step, so no attempt reached the verifier: someone else enrolled the id), any other failure,
 * a second reset, or a timeout past the back-offs, is thrown.
 */
export async function enrolRetryingCutRequests(enrol: () => Promise<unknown>, options: EnrolmentRetries = {}): Promise<void> {
  const backoff = options.timeoutBackoffMs ?? ENROLMENT_TIMEOUT_BACKOFF_MS;
  const signal = options.signal ?? new AbortController().signal;
  const cutUrls = new Set<string>();
  let resets = 0;
  let timeouts = 0;
  for (;;) {
    try {
      await enrol();
      return;
    } catch (error) {
      if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 409 && cutUrls.has(error.url)) return;
      if (isConnectionReset(error) && resets < 1) {
        resets += 1;
        cutUrls.add(error.url);
      } else if (error instanceof ServiceUnreachableError && error.reason === 'timeout' && timeouts < backoff.length) {
        cutUrls.add(error.url);
        await abortableDelay(backoff[timeouts] as number, signal);
        timeouts += 1;
      } else {
        throw error;
      }
    }
  }
}

/** A reset, or a connection closed before a single byte of the answer came. */
function isConnectionReset(error: unknown): error is ServiceUnreachableError {
  if (!(error instanceof ServiceUnreachableError)) return false;
  const cause = error.cause;
  return (cause as { code?: unknown } | undefined)?.code === 'ECONNRESET' || (cause instanceof Http1ParseError && cause.closedBeforeHead);
}
