import { X509Certificate } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { createSecureContext, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import axios, { AxiosError, type AxiosInstance } from 'axios';
import { InvalidConfig } from '../../interfaces/errors.js';
import { BadRemoteReplyError, KeylimeHttpError, ServiceUnreachableError, type UnreachableReason } from './client-errors.js';
import { validateDto, type DtoClass } from './dto-validation.js';
import type { KeylimeEnvelope } from './envelope.js';
import { RequestValidationError } from './http-errors.js';
import { withDeadline } from './request-deadline.js';

export interface KeylimeClientTls {
  /** PEM CA(s) the server certificate must chain to (plus the host name check). */
  readonly ca?: string;
  /** Client certificate and key PEM for mTLS. */
  readonly cert?: string;
  readonly key?: string;
  /**
   * PEM of the one server certificate to accept, byte for byte, whatever its names: how the verifier
   * and the tenant trust a pull agent's self-signed `mtls_cert` from the registrar. Excludes `ca`.
   */
  readonly pinnedServerCert?: string;
}

export interface KeylimeClientOptions {
  /** `https://10.0.0.5:9002`; paths are appended as given (`/v2.6/agents/<id>`). */
  readonly baseUrl: string;
  readonly tls?: KeylimeClientTls;
  /** Whole-request deadline (connect to last byte, `request-deadline.ts`) and socket idle timeout; default 30 s. */
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
}

/** A parsed 2xx reply: `results` typed by the results DTO when one was given, else `unknown` (unvalidated). */
export type ClientReply<O extends RequestOptions> = KeylimeEnvelope<O extends { results: DtoClass<infer R> } ? R : unknown>;

/** A client for Keylime-style services. Every method resolves to a 2xx envelope or throws a typed error. */
export interface KeylimeClient {
  get<O extends RequestOptions = RequestOptions>(path: string, options?: O): Promise<ClientReply<O>>;
  post<O extends RequestOptions = RequestOptions>(path: string, body?: unknown, options?: O): Promise<ClientReply<O>>;
  put<O extends RequestOptions = RequestOptions>(path: string, body?: unknown, options?: O): Promise<ClientReply<O>>;
  delete<O extends RequestOptions = RequestOptions>(path: string, options?: O): Promise<ClientReply<O>>;
  /** Closes kept-alive connections. */
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RESPONSE = 64 * 1024 * 1024;
const DEFAULT_MAX_REQUEST = 256 * 1024 * 1024;

/**
 * Creates a client for `baseUrl`. Errors: `ServiceUnreachableError` (refused, timeout, TLS failure
 * including a pinned-certificate mismatch, other network errors), `KeylimeHttpError` (non-2xx, with
 * the remote status, status text and results), `BadRemoteReplyError` (not an envelope, too large, or
 * results failing the DTO). Proxies from the environment are ignored: services talk to each other
 * directly. Throws `InvalidConfig` for an unusable option.
 */
export function createKeylimeClient(options: KeylimeClientOptions): KeylimeClient {
  const base = parseBaseUrl(options.baseUrl);
  const timeout = boundedInteger(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 1, 3_600_000, 'timeoutMs');
  const maxResponse = boundedInteger(options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE, 1024, 1024 ** 3, 'maxResponseBytes');
  const maxRequest = boundedInteger(options.maxRequestBytes ?? DEFAULT_MAX_REQUEST, 1024, 1024 ** 3, 'maxRequestBytes');
  if (base.protocol === 'http:' && options.tls !== undefined) {
    throw new InvalidConfig('baseUrl', 'TLS options given for an http:// URL');
  }
  const httpsAgent = base.protocol === 'https:' ? createHttpsAgent(options.tls ?? {}) : undefined;
  const httpAgent = base.protocol === 'http:' ? new HttpAgent({ keepAlive: true }) : undefined;
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
    ...(httpsAgent === undefined ? {} : { httpsAgent }),
    ...(httpAgent === undefined ? {} : { httpAgent }),
  });
  // The DTO check in `request` is what makes the conditional result type true.
  const send = <O extends RequestOptions>(method: string, path: string, body: unknown, opts?: O) =>
    request(http, method, path, body, opts ?? {}) as Promise<ClientReply<O>>;
  return {
    get: (path, opts) => send('GET', path, undefined, opts),
    post: (path, body, opts) => send('POST', path, body, opts),
    put: (path, body, opts) => send('PUT', path, body, opts),
    delete: (path, opts) => send('DELETE', path, undefined, opts),
    close: () => {
      httpsAgent?.destroy();
      httpAgent?.destroy();
    },
  };
}

async function request(
  http: AxiosInstance,
  method: string,
  path: string,
  body: unknown,
  options: RequestOptions,
): Promise<KeylimeEnvelope<unknown>> {
  const url = `${http.defaults.baseURL ?? ''}${path}`;
  const timeout = http.defaults.timeout ?? DEFAULT_TIMEOUT_MS;
  const send = (signal: AbortSignal) =>
    http.request<string>({
      method,
      url: path,
      signal,
      ...(options.query === undefined ? {} : { params: options.query }),
      ...(body === undefined ? {} : { data: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
    });
  const expired = () => new ServiceUnreachableError(url, 'timeout', `no complete reply within ${timeout} ms`);
  let response;
  try {
    response = await withDeadline(timeout, expired, (signal) =>
      send(signal).catch((error: unknown) => {
        if (!staleKeptAliveSocket(method, error)) throw error;
        return send(signal);
      }),
    );
  } catch (error) {
    throw error instanceof ServiceUnreachableError ? error : mapTransportError(url, error);
  }
  const envelope = replyEnvelope(url, response.status, response.statusText ?? '', () => jsonOfText(response.data));
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
 * The server closed a kept-alive connection just as this request went out on it (`ECONNRESET` on a
 * reused socket, node's documented keep-alive race): an idempotent request is sent once more, on a
 * fresh connection. A POST is not.
 */
function staleKeptAliveSocket(method: string, error: unknown): boolean {
  if (!(error instanceof AxiosError) || error.code !== 'ECONNRESET' || method.toUpperCase() === 'POST') {
    return false;
  }
  return (error.request as { reusedSocket?: boolean } | undefined)?.reusedSocket === true;
}

/**
 * A reply as the caller sees it: 204 as an empty envelope, a non-2xx status as `KeylimeHttpError`
 * (with the envelope's status and results when there is one), any other body that is not an envelope
 * as `BadRemoteReplyError`. Shared by this client and the thin one (`thin-https-client.ts`).
 */
export function replyEnvelope(url: string, status: number, statusText: string, readBody: () => unknown): KeylimeEnvelope<unknown> {
  if (status === 204) {
    return { code: 204, status: 'No Content', results: {} };
  }
  const envelope = parseEnvelope(readBody);
  if (status < 200 || status > 299) {
    throw new KeylimeHttpError(url, status, envelope?.status ?? statusText, envelope?.results ?? {});
  }
  if (envelope === undefined) {
    throw new BadRemoteReplyError(url, 'not a Keylime JSON envelope {code, status, results}');
  }
  return envelope;
}

/** The JSON value of a reply's text (axios hands the body over as text); throws when it is not JSON. */
function jsonOfText(text: unknown): unknown {
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

function mapTransportError(url: string, error: unknown): Error {
  if (!(error instanceof AxiosError)) {
    return new ServiceUnreachableError(url, 'network', String(error), { cause: error });
  }
  const code = error.code ?? (error.cause as { code?: string } | undefined)?.code ?? '';
  if (error.message.includes('maxContentLength')) {
    return new BadRemoteReplyError(url, 'reply larger than the configured maximum', { cause: error });
  }
  if (code === 'ERR_FR_MAX_BODY_LENGTH_EXCEEDED') {
    return new BadRemoteReplyError(url, 'request body larger than the configured maximum', { cause: error });
  }
  return new ServiceUnreachableError(url, classify(code, error.message), code === '' ? error.message.trim() : `${code}: ${error.message.trim()}`, { cause: error });
}

/** OpenSSL's words when TLS meets a peer that does not speak it (a plain HTTP port), reported as EPROTO. */
const NOT_TLS = /wrong version number|packet length too long|http request/i;

/** Why a transport error means the service was not reached; `message` tells TLS to a plain port apart. */
export function classify(code: string, message = ''): UnreachableReason {
  if (code === 'EPROTO' && NOT_TLS.test(message)) {
    return 'tls';
  }
  if (code === 'ECONNREFUSED') {
    return 'refused';
  }
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') {
    return 'timeout';
  }
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_|PINNED/.test(code)) {
    return 'tls';
  }
  return 'network';
}

/**
 * The keep-alive HTTPS agent for `tls` (CA, or one pinned server certificate compared byte for byte,
 * plus an optional client certificate), for the axios-based client.
 */
export function createHttpsAgent(tls: KeylimeClientTls): HttpsAgent {
  const connect = keylimeTlsConnectOptions(tls);
  if (tls.pinnedServerCert === undefined) {
    return new HttpsAgent({ keepAlive: true, ...connect });
  }
  // One server, one connection: a second request waits for the kept-alive socket instead of paying a
  // new TLS handshake on both sides. No session resumption: every handshake shows the certificate again.
  return new HttpsAgent({ keepAlive: true, maxSockets: 1, maxCachedSessions: 0, ...connect });
}

/**
 * The `tls.connect` options for `tls`: one secure context (key, certificate and CA parsed once, not on
 * every reconnect), TLS 1.2 at least, and for a pinned server certificate the exact comparison that
 * replaces the host name check. Shared by `createHttpsAgent` and the thin hot-path client.
 */
export function keylimeTlsConnectOptions(tls: KeylimeClientTls): ConnectionOptions {
  if (tls.pinnedServerCert !== undefined && tls.ca !== undefined) {
    throw new InvalidConfig('tls', 'give either ca or pinnedServerCert, not both');
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new InvalidConfig('tls', 'cert and key go together');
  }
  const secureContext = createSecureContext({
    minVersion: 'TLSv1.2',
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
    ...((tls.pinnedServerCert ?? tls.ca) === undefined ? {} : { ca: tls.pinnedServerCert ?? tls.ca }),
  });
  if (tls.pinnedServerCert === undefined) {
    return { minVersion: 'TLSv1.2', secureContext, ...(tls.ca === undefined ? {} : { ca: tls.ca }) };
  }
  const pinned = pinnedDer(tls.pinnedServerCert);
  return {
    minVersion: 'TLSv1.2',
    secureContext,
    // The pinned certificate is the only trust anchor, so OpenSSL accepts nothing else; the check below
    // then replaces the host name check (agents are reached by IP and name themselves by UUID) with an
    // exact comparison.
    ca: tls.pinnedServerCert,
    checkServerIdentity: (_host: string, cert: PeerCertificate) => {
      const raw = cert.raw;
      if (raw === undefined || raw.length !== pinned.length || !raw.equals(pinned)) {
        return Object.assign(new Error('server certificate is not the pinned certificate'), { code: 'ERR_PINNED_CERT_MISMATCH' });
      }
      return undefined;
    },
  };
}

function pinnedDer(pem: string): Buffer {
  try {
    return new X509Certificate(pem).raw;
  } catch (error) {
    throw new InvalidConfig('tls.pinnedServerCert', 'is not a PEM certificate', { cause: error });
  }
}

/** Which side of a TLS handshake failed deterministically (retrying cannot help). */
export type TlsFailureKind = 'server-certificate' | 'client-certificate' | 'pinned-certificate' | 'protocol';

/**
 * Why a `ServiceUnreachableError` of reason `tls` happened, from the OpenSSL/Node error code behind
 * it: the server's certificate did not verify against our CA or its name (`server-certificate`), the
 * server refused our client certificate with a TLS alert (`client-certificate`), a pinned agent
 * certificate differed (`pinned-certificate`), or the two sides share no protocol — for example TLS
 * spoken to a plain HTTP port (`protocol`). Undefined for any other error, including a handshake that
 * timed out or was cut. Each kind is a configuration fact, not a passing fault: callers fail at once.
 */
export function tlsFailureKind(error: unknown): TlsFailureKind | undefined {
  if (!(error instanceof ServiceUnreachableError) || error.reason !== 'tls') {
    return undefined;
  }
  const cause = error.cause as { code?: unknown; message?: unknown; cause?: { code?: unknown } } | undefined;
  const code = String(cause?.code ?? cause?.cause?.code ?? '');
  if (code === 'EPROTO' && NOT_TLS.test(String(cause?.message ?? ''))) {
    return 'protocol';
  }
  if (code === 'ERR_PINNED_CERT_MISMATCH') {
    return 'pinned-certificate';
  }
  if (/ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_REQUIRED|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED)/.test(code)) {
    return 'client-certificate';
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_/.test(code)) {
    return 'server-certificate';
  }
  if (/WRONG_VERSION_NUMBER|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS_AVAILABLE|VERSION_TOO_LOW|PROTOCOL_VERSION|NO_SHARED_CIPHER|HTTP_REQUEST/.test(code)) {
    return 'protocol';
  }
  return undefined;
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
