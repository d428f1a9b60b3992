import { BadRemoteReplyError, KeylimeHttpError } from './client-errors.js';
import type { KeylimeEnvelope } from './envelope.js';

/**
 * A reply as the caller sees it: 204 as an empty envelope, a non-2xx status as `KeylimeHttpError`
 * (with the envelope's status and results when there is one, and `resent` as given: the reply answered
 * a request sent once more, and the `Retry-After` header given), any other body that is not an envelope as `BadRemoteReplyError`. Shared
 * by the axios client (`keylime-client.ts`) and the thin one (`thin-https-client.ts`).
 */
export function replyEnvelope(url: string, status: number, statusText: string, readBody: () => unknown, resent = false, retryAfter?: string): KeylimeEnvelope<unknown> {
  if (status === 204) {
    return { code: 204, status: 'No Content', results: {} };
  }
  const envelope = parseEnvelope(readBody);
  if (status < 200 || status > 299) {
    throw new KeylimeHttpError(url, status, envelope?.status ?? statusText, envelope?.results ?? {}, resent, retryAfter);
  }
  if (envelope === undefined) {
    throw new BadRemoteReplyError(url, 'not a Keylime JSON envelope {code, status, results}');
  }
  return envelope;
}

/** The JSON value of a reply's text (axios hands the body over as text); throws when it is not JSON. */
export function jsonOfText(text: unknown): unknown {
  if (typeof text !== 'string') {
    throw new TypeError('the reply body is not text');
  }
  return JSON.parse(text);
}

/** The `{code, status, results}` envelope in a reply body (`readBody` gives its JSON value), or undefined when the body is not one. */
function parseEnvelope(readBody: () => unknown): KeylimeEnvelope<unknown> | undefined {
  let value: unknown;
  try {
    value = readBody();
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') {
    return undefined;
  }
  const { code, status, results } = value as Record<string, unknown>;
  if (typeof code !== 'number' || typeof status !== 'string') {
    return undefined;
  }
  return { code, status, results: results ?? {} };
}
