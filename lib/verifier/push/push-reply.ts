import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorReply } from '../../http/error-envelope.js';
import { ServiceBusyError } from '../../http/http-errors.js';

/** The push routes' media type (JSON:API, keylime-protocol §10). */
export const JSON_API = 'application/vnd.api+json';

/**
 * A refusal of a push route with Keylime's status and error code (`premature_attestation`,
 * `old_attestation`, …) and, for 429/503, the seconds after which to try again (`Retry-After`).
 */
export class PushRefused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly retryAfter?: number,
  ) {
    super(`${status} ${code}: ${detail}`);
    this.name = 'PushRefused';
  }
}

/** 503: the agent's previous evidence is still being judged; try again after `retryAfter` seconds. */
export function verificationInProgress(retryAfter: number): PushRefused {
  return new PushRefused(503, 'verification_in_progress', 'the previous evidence is still being verified', retryAfter);
}

/** A JSON:API document reply. */
export function sendJsonApi(reply: FastifyReply, status: number, document: object, headers: Readonly<Record<string, string>> = {}): FastifyReply {
  return sendJsonApiText(reply, status, JSON.stringify(document), headers);
}

/** A JSON:API document reply from its JSON text. */
export function sendJsonApiText(reply: FastifyReply, status: number, text: string, headers: Readonly<Record<string, string>> = {}): FastifyReply {
  return reply.code(status).headers({ ...headers, 'content-type': JSON_API }).send(Buffer.from(text, 'utf8'));
}

/**
 * The push routes' error handler: a `PushRefused` as a JSON:API error object with its status (and
 * `Retry-After`, as for a `ServiceBusyError`: a full body budget); any other error through the service's one mapping (`errorReply`: typed errors keep
 * their status and message, a 5xx says only its reason phrase).
 */
export function sendPushError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof PushRefused) {
    request.log.info({ status: error.status, code: error.code }, 'push request refused');
    const headers: Record<string, string> = error.retryAfter === undefined ? {} : { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfter))) };
    return sendJsonApi(reply, error.status, { errors: [{ status: String(error.status), code: error.code, detail: error.detail }] }, headers);
  }
  const { code, status } = errorReply(error, request.routeOptions.bodyLimit);
  if (error instanceof ServiceBusyError) {
    // A full body budget: the agent is asked to come back, as on every route.
    request.log.info({ status: code }, 'push request refused: busy');
    return sendJsonApi(reply, code, { errors: [{ status: String(code), detail: status }] }, { 'retry-after': String(error.retryAfterSeconds) });
  }
  if (code >= 500) {
    request.log.error({ err: error }, 'push request failed');
  }
  return sendJsonApi(reply, code, { errors: [{ status: String(code), detail: status }] });
}
