import { IronlimeError, type IronlimeErrorOptions } from '../../interfaces/errors.js';

/** Why a remote service could not be used. `tls` includes a pinned-certificate mismatch. */
export type UnreachableReason = 'refused' | 'timeout' | 'tls' | 'network';

/** The remote Keylime service could not be reached or did not answer in time; nothing was decided. */
export class ServiceUnreachableError extends IronlimeError {
  readonly reason: UnreachableReason;
  readonly url: string;

  constructor(url: string, reason: UnreachableReason, detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_SERVICE_UNREACHABLE', `${url}: ${reason === 'tls' ? 'TLS handshake failed' : 'unreachable'}: ${detail}`, options);
    this.reason = reason;
    this.url = url;
  }
}

/**
 * The remote service answered with a non-2xx status. `httpStatus` is the remote's status (not what
 * our own service would answer: the shell maps this error by its code, ERR_REMOTE_HTTP_STATUS → 502),
 * `status` the envelope's status text and `results` its results (`{}` when the reply was no envelope).
 * `resent`: the status answered the request sent once more after the kept-alive connection of the
 * first attempt was closed under it (`keylime-client.ts`), so the first attempt may have been carried
 * out (a DELETE's 404 then is no error: the client answers it as done). `retryAfter`: the reply's
 * `Retry-After` header, unparsed; the message says when to retry when it is seconds or a date.
 */
export class KeylimeHttpError extends IronlimeError {
  readonly remoteHttpStatus: number;
  readonly status: string;
  readonly results: unknown;
  readonly url: string;
  readonly resent: boolean;
  /** The reply's `Retry-After` header as sent (RFC 9110 §10.2.3), for a caller that tries again after a 429 or 503. */
  readonly retryAfter: string | undefined;

  constructor(url: string, httpStatus: number, status: string, results: unknown, resent = false, retryAfter?: string) {
    super('ERR_REMOTE_HTTP_STATUS', `${url}: ${httpStatus} ${status}${resent ? ' (to the request sent again after its connection was closed)' : ''}${retryHint(retryAfter)}`);
    this.remoteHttpStatus = httpStatus;
    this.status = status;
    this.results = results;
    this.url = url;
    this.resent = resent;
    this.retryAfter = retryAfter;
  }

  override get httpStatus(): number {
    return this.remoteHttpStatus;
  }
}

/**
 * ` (the service asks to retry in 30 s)` for a `Retry-After` of delay-seconds, `… after <date>` for an
 * HTTP-date (RFC 9110 §10.2.3); nothing for any other value, which is not repeated to the operator.
 */
function retryHint(retryAfter: string | undefined): string {
  const text = retryAfter?.trim() ?? '';
  if (/^\d{1,9}$/.test(text)) return ` (the service asks to retry in ${Number(text)} s)`;
  // IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`: the one date form the message repeats as sent.
  if (/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text) && Number.isFinite(Date.parse(text))) return ` (the service asks to retry after ${text})`;
  return '';
}

/** The remote reply is not a Keylime JSON envelope, its results fail the expected shape, or it is too large. */
export class BadRemoteReplyError extends IronlimeError {
  readonly url: string;

  constructor(url: string, detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_BAD_REMOTE_REPLY', `${url}: bad reply: ${detail}`, options);
    this.url = url;
  }
}
