import axios, { type AxiosInstance } from 'axios';
import { InvalidConfig } from '../../interfaces/errors.js';
import { BadRemoteReplyError, ServiceUnreachableError } from './client-errors.js';
import { createClientConnections, type AgentOption, type ClientConnections } from './keylime-client-connections.js';
import type { KeylimeClientTls } from './keylime-client-tls.js';
import { jsonOfText, replyEnvelope } from './keylime-reply.js';
import { mapTransportError } from './keylime-transport-errors.js';
import { validateDto, type DtoClass } from './dto-validation.js';
import type { KeylimeEnvelope } from './envelope.js';
import { RequestValidationError } from './http-errors.js';
import { withDeadline } from './request-deadline.js';

export interface KeylimeClientOptions {
  /** `https://10.0.0.5:9002`; paths are appended as given (`/v2.6/agents/<id>`). */
  readonly baseUrl: string;
  readonly tls?: KeylimeClientTls;
  /**
   * Whole-request deadline (connect to last byte, `request-deadline.ts`, a resend on a fresh connection
   * included), socket idle timeout, and the longest an idle kept-alive connection is kept; default 30 s.
   */
  readonly timeoutMs?: number;
  /** Largest accepted reply body; default 64 MiB (IMA logs can be long). */
  readonly maxResponseBytes?: number;
  /** Largest request body sent; default 256 MiB. */
  readonly maxRequestBytes?: number;
}

export interface RequestOptions {
  /** Query parameters, URL-encoded by the client. */
  readonly query?: Readonly<Record<string, string | number | boolean>>;
  /** Validates `results` of a 2xx reply with this DTO (extra fields are dropped); a mismatch is `BadRemoteReplyError`. */
  readonly results?: DtoClass<object>;
  /** Also give the remote clock when it answered (`serverTime`, from its `Date` header and any `Age`). */
  readonly serverTime?: boolean;
}

/**
 * A parsed 2xx reply: `results` typed by the results DTO when one was given, else `unknown` (unvalidated),
 * and, when asked for (`serverTime: true`), the remote clock when it answered (its `Date` header, unix
 * seconds; absent when not sent or unreadable).
 */
export type ClientReply<O extends RequestOptions> = KeylimeEnvelope<O extends { results: DtoClass<infer R> } ? R : unknown> & { readonly serverTime?: number };

/** A client for Keylime-style services. Every method resolves to a 2xx envelope or throws a typed error. */
export interface KeylimeClient {
  get<O extends RequestOptions = RequestOptions>(path: string, options?: O): Promise<ClientReply<O>>;
  post<O extends RequestOptions = RequestOptions>(path: string, body?: unknown, options?: O): Promise<ClientReply<O>>;
  put<O extends RequestOptions = RequestOptions>(path: string, body?: unknown, options?: O): Promise<ClientReply<O>>;
  delete<O extends RequestOptions = RequestOptions>(path: string, options?: O): Promise<ClientReply<O>>;
  /** Closes kept-alive connections and ends the requests in flight; later requests are refused (`ServiceUnreachableError`). */
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RESPONSE = 64 * 1024 * 1024;
const DEFAULT_MAX_REQUEST = 256 * 1024 * 1024;

/**
 * Creates a client for `baseUrl`. Errors: `ServiceUnreachableError` (refused, timeout, TLS failure
 * including a pinned-certificate mismatch, other network errors), `KeylimeHttpError` (non-2xx, with
 * the remote status, status text and results, and whether it answered a resend: `resent`), `BadRemoteReplyError` (not an envelope, too large, or
 * results failing the DTO). An idempotent request (GET, PUT, DELETE) whose kept-alive connection the
 * server closed or reset before a single byte of the answer came is sent once more, on a fresh
 * connection and within the same deadline; a POST never is. A DELETE so sent again and answered 404 is
 * done (an empty 200): the first attempt deleted it, or nothing was there; sent once, a 404 stays a
 * `KeylimeHttpError`. Proxies from the environment are ignored:
 * services talk to each other directly. Throws `InvalidConfig` for an unusable option.
 */
export function createKeylimeClient(options: KeylimeClientOptions): KeylimeClient {
  const base = parseBaseUrl(options.baseUrl);
  const timeout = boundedInteger(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 1, 3_600_000, 'timeoutMs');
  const maxResponse = boundedInteger(options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE, 1024, 1024 ** 3, 'maxResponseBytes');
  const maxRequest = boundedInteger(options.maxRequestBytes ?? DEFAULT_MAX_REQUEST, 1024, 1024 ** 3, 'maxRequestBytes');
  if (base.protocol === 'http:' && options.tls !== undefined) {
    throw new InvalidConfig('baseUrl', 'TLS options given for an http:// URL');
  }
  // Idle kept-alive connections close after the request timeout at most (or before the server's announced one).
  const connections = createClientConnections(base.protocol as 'http:' | 'https:', options.tls ?? {}, timeout);
  const http = axios.create({
    baseURL: base.origin + base.pathname.replace(/\/$/, ''),
    timeout,
    maxContentLength: maxResponse,
    maxBodyLength: maxRequest,
    maxRedirects: 0,
    proxy: false,
    responseType: 'text',
    transformResponse: [(data: unknown) => data],
    validateStatus: () => true,
  });
  // The DTO check in `request` is what makes the conditional result type true.
  const send = <O extends RequestOptions>(method: string, path: string, body: unknown, opts?: O) =>
    request(http, connections, method, path, body, opts ?? {}) as Promise<ClientReply<O>>;
  return {
    get: (path, opts) => send('GET', path, undefined, opts),
    post: (path, body, opts) => send('POST', path, body, opts),
    put: (path, body, opts) => send('PUT', path, body, opts),
    delete: (path, opts) => send('DELETE', path, undefined, opts),
    close: () => {
      connections.destroy();
    },
  };
}

/** What a DELETE answered 404 on its resend comes to (`request`). */
const DELETED_BY_FIRST_ATTEMPT: KeylimeEnvelope<unknown> = Object.freeze({ code: 200, status: 'OK', results: {} });

async function request(
  http: AxiosInstance,
  connections: ClientConnections,
  method: string,
  path: string,
  body: unknown,
  options: RequestOptions,
): Promise<KeylimeEnvelope<unknown> & { readonly serverTime?: number }> {
  const url = `${http.defaults.baseURL ?? ''}${path}`;
  if (connections.destroyed) {
    throw new ServiceUnreachableError(url, 'network', 'the client was closed');
  }
  const timeout = http.defaults.timeout ?? DEFAULT_TIMEOUT_MS;
  const send = (signal: AbortSignal, agent: AgentOption) =>
    http.request<string>({
      method,
      url: path,
      signal,
      ...agent,
      ...(options.query === undefined ? {} : { params: options.query }),
      ...(body === undefined ? {} : { data: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
    });
  const expired = () => new ServiceUnreachableError(url, 'timeout', `no complete reply within ${timeout} ms`);
  let response;
  let resent = false;
  try {
    // A resend shares the first attempt's deadline: the whole exchange stays within `timeout`.
    response = await withDeadline(timeout, expired, (signal) =>
      send(signal, connections.pooled).catch((error: unknown) => {
        // `close()` destroys the sockets of requests in flight too (a caller that stopped waiting for
        // one): that reset is ours, not a stale connection, and sending again would open a new one.
        if (connections.destroyed || !connections.watch.closedUnanswered(method, error)) throw error;
        resent = true;
        return send(signal, connections.fresh);
      }),
    );
  } catch (error) {
    throw error instanceof ServiceUnreachableError ? error : mapTransportError(url, error);
  }
  const serverTime = options.serverTime === true ? serverTimeOf(response.headers['date'], response.headers['age']) : undefined;
  // A DELETE sent again that finds nothing: the first attempt may have deleted it (it cannot be told from
  // a thing never there, nor one deleted meanwhile), and nothing is left to delete either way: done.
  const deletedBefore = resent && method === 'DELETE' && response.status === 404;
  const retryAfter = response.headers['retry-after'];
  const reply = deletedBefore
    ? DELETED_BY_FIRST_ATTEMPT
    : replyEnvelope(url, response.status, response.statusText ?? '', () => jsonOfText(response.data), resent, typeof retryAfter === 'string' ? retryAfter : undefined);
  const envelope = { ...reply, ...(serverTime === undefined ? {} : { serverTime }) };
  if (options.results === undefined) {
    return envelope;
  }
  try {
    return { ...envelope, results: validateDto(options.results, envelope.results, 'results') };
  } catch (error) {
    if (error instanceof RequestValidationError) {
      throw new BadRemoteReplyError(url, error.message, { cause: error });
    }
    throw error;
  }
}

/**
 * `https://<host>:<port>` for an address as Keylime stores it (`ip` and `port` of a registrar record or
 * an enrolment): an IPv6 literal is bracketed (`https://[fd00::5]:9002`). The one place this is built.
 */
export function httpsServiceUrl(host: string, port: number): string {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  return `https://${bare.includes(':') ? `[${bare}]` : bare}:${port}`;
}

function parseBaseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch (error) {
    throw new InvalidConfig('baseUrl', `${JSON.stringify(text)} is not a URL`, { cause: error });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidConfig('baseUrl', 'must be http:// or https://');
  }
  return url;
}

function boundedInteger(value: number, min: number, max: number, field: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidConfig(field, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

/**
 * The remote clock now, unix seconds: the `Date` header (RFC 9110 §6.6.1: whole seconds) plus the `Age`
 * a cache adds to a reply it kept (RFC 9111 §5.1), so a kept reply is not read as new; undefined when
 * `Date` is absent or not a date, or `Age` is not whole seconds.
 */
function serverTimeOf(date: unknown, age: unknown): number | undefined {
  if (typeof date !== 'string') return undefined;
  const ms = Date.parse(date);
  if (!Number.isFinite(ms)) return undefined;
  if (age === undefined) return ms / 1000;
  return typeof age === 'string' && /^\d{1,10}$/.test(age.trim()) ? ms / 1000 + Number(age.trim()) : undefined;
}
