import { IronlimeError, type IronlimeErrorOptions } from '../../interfaces/errors.js';

/**
 * Errors the service shell raises at the boundary. Handlers may throw them too; the shell's one error
 * handler (`error-envelope.ts`) turns every `IronlimeError` into the Keylime envelope with the status
 * `ERROR_CODES` gives and the message as the envelope's `status`.
 */

/** Path parameters, query or body failed validation; `location` is e.g. `body.quote` or `query`. */
export class RequestValidationError extends IronlimeError {
  readonly location: string;
  /** What is wrong there (the message less its location). */
  readonly detail: string;

  constructor(location: string, detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_INVALID_REQUEST', `${location}: ${detail}`, options);
    this.location = location;
    this.detail = detail;
  }
}

/** No such route, or (thrown by handlers) no such object: the message is the envelope's status. */
export class NotFoundError extends IronlimeError {
  constructor(message = 'Not Found') {
    super('ERR_NOT_FOUND', message);
  }
}

/** The caller is not allowed to use this route. */
export class ForbiddenError extends IronlimeError {
  constructor(message: string) {
    super('ERR_FORBIDDEN', message);
  }
}

/** The request body exceeds the route's body limit. */
export class PayloadTooLargeError extends IronlimeError {
  readonly limitBytes: number;

  constructor(limitBytes: number) {
    super('ERR_PAYLOAD_TOO_LARGE', `request body larger than ${limitBytes} bytes`);
    this.limitBytes = limitBytes;
  }
}

/** The URL's `/v<x>/` prefix names an API version the service does not serve; the message is the status. */
export class UnsupportedApiVersionError extends IronlimeError {
  readonly requested: string;

  constructor(requested: string, statusText: string) {
    super('ERR_UNSUPPORTED_API_VERSION', statusText);
    this.requested = requested;
  }
}

/** A body's Content-Type is one a browser sends cross-site without a preflight (CSRF), on a route that takes JSON. */
export class UnsupportedMediaTypeError extends IronlimeError {
  constructor(mediaType: string) {
    super('ERR_UNSUPPORTED_MEDIA_TYPE', `content-type ${mediaType} not accepted: send application/json`);
  }
}

/**
 * The route holds as much work as it may at once (request bodies; an agent's waiting quotes, with
 * `ERR_AGENT_BUSY`); the reply says when to retry.
 */
export class ServiceBusyError extends IronlimeError {
  readonly retryAfterSeconds: number;

  constructor(detail: string, retryAfterSeconds: number, code: 'ERR_SERVICE_BUSY' | 'ERR_AGENT_BUSY' = 'ERR_SERVICE_BUSY') {
    super(code, detail);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
