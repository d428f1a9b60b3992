import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance } from 'fastify';
import { ERROR_CODES, IronlimeError } from '../../interfaces/errors.js';
import type { ApiVersionPolicy } from './api-version.js';
import { unsupportedVersionSegment } from './api-version.js';
import { sendEnvelope } from './envelope.js';
import { NotFoundError, PayloadTooLargeError, RequestValidationError, ServiceBusyError, UnsupportedApiVersionError } from './http-errors.js';

/** HTTP status and envelope status text of an error that reached the shell. */
export interface ErrorReply {
  readonly code: number;
  readonly status: string;
}

const INTERNAL: ErrorReply = { code: 500, status: 'Internal Server Error' };

/**
 * The one mapping from an error to the reply (STYLE 6): an `IronlimeError` answers with the status
 * `ERROR_CODES` gives its code — by code, never by an overridden `httpStatus` — and, for 4xx, its
 * message as status text; fastify's own request errors (body too large, bad JSON, bad content length)
 * become our typed errors first. A 5xx says only its reason phrase ("Service Unavailable"): its
 * message may name hosts, files or database addresses, which stay in the log. Anything untyped is a
 * bare 500 "Internal Server Error".
 */
export function errorReply(error: unknown, bodyLimit = 0): ErrorReply {
  const typed = error instanceof IronlimeError ? error : fromFastifyError(error, bodyLimit);
  if (typed === undefined) {
    return INTERNAL;
  }
  const code = ERROR_CODES[typed.code];
  return { code, status: code >= 500 ? (STATUS_CODES[code] ?? INTERNAL.status) : typed.message };
}

/** Installs the error handler and the 404 handler (with the unsupported-version 400) on `app`. */
export function installErrorHandlers(app: FastifyInstance, versions: ApiVersionPolicy): void {
  app.setErrorHandler((error, request, reply) => {
    const { code, status } = errorReply(error, request.routeOptions.bodyLimit);
    if (error instanceof ServiceBusyError) {
      void reply.header('retry-after', String(error.retryAfterSeconds));
    }
    if (code >= 500) {
      request.log.error({ err: error }, 'request failed');
    } else {
      request.log.info({ code, status }, 'request refused');
    }
    return sendEnvelope(reply, code, status, {});
  });
  app.setNotFoundHandler((request, reply) => {
    const { code, status } = errorReply(notFoundError(versions, request.url));
    return sendEnvelope(reply, code, status, {});
  });
}

/** The refusal of a request to no route: 400 for a version the service does not serve, else 404. */
export function notFoundError(versions: ApiVersionPolicy, url: string): IronlimeError {
  const segment = unsupportedVersionSegment(versions, url);
  return segment === undefined ? new NotFoundError() : new UnsupportedApiVersionError(segment, versions.unsupportedStatus(segment));
}

function fromFastifyError(error: unknown, bodyLimit: number): IronlimeError | undefined {
  if (!(error instanceof Error)) {
    return undefined;
  }
  const { code, statusCode } = error as Partial<FastifyError>;
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLargeError(bodyLimit);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new RequestValidationError('body', 'must be JSON');
    default:
      break;
  }
  if (error instanceof SyntaxError && statusCode === 400) {
    // secure-json-parse's SyntaxError, tagged 400 by fastify's body reader.
    return new RequestValidationError('body', 'must be JSON');
  }
  if (typeof code === 'string' && code.startsWith('FST_ERR_CTP_') && statusCode === 400) {
    return new RequestValidationError('body', 'cannot be read');
  }
  if (typeof code === 'string' && code.startsWith('FST_') && statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
    return new RequestValidationError('request', 'is malformed');
  }
  return undefined;
}
