import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UnsupportedMediaTypeError } from './http-errors.js';

/**
 * Media types a page of any origin can send in a POST without a CORS preflight (Fetch standard,
 * "CORS-safelisted request-header" `Content-Type`): a cross-site `<form>` or `fetch(…, {mode:
 * 'no-cors'})`. A browser holding the client certificate or the dashboard cookie would attach it.
 */
const CROSS_SITE_MEDIA_TYPES: ReadonlySet<string> = new Set(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data']);

/**
 * The fastify route config of a route a browser can reach with an ambient credential (an admin route:
 * client certificate or token cookie), whose bodies of a cross-site media type are refused.
 */
export interface CrossSiteBodyConfig {
  readonly refuseCrossSiteBodies?: boolean;
}

/**
 * Installs, for every route of `app` and its scopes (404s included), the checks made on a request's
 * headers before its body is read:
 * - a request with a body to no route is refused with `notFound(request)` — fastify's 404 route would
 *   otherwise read and parse a body up to the service's limit;
 * - a body with a cross-site media type (`CROSS_SITE_MEDIA_TYPES`) is refused 415 on the routes whose
 *   config says `refuseCrossSiteBodies` (CSRF: they take JSON, which a cross-site page cannot send
 *   without a preflight; a missing Content-Type, which Keylime's Python tenant sends, stays JSON).
 *   Other routes carry no credential a browser attaches, and parse any body as JSON as Keylime does:
 *   Keylime's verifier posts the agent's `keys/vkey` through tornado, which labels it
 *   `application/x-www-form-urlencoded`.
 * A refused body is not read (see `closeIfOverLimit`).
 */
export function installBeforeBodyChecks(app: FastifyInstance, notFound: (request: FastifyRequest) => Error): void {
  app.addHook('preParsing', (request, reply, _payload, done) => {
    const refusal = refusalBeforeBody(request, notFound);
    if (refusal === undefined) {
      done();
      return;
    }
    closeIfOverLimit(request, reply);
    done(refusal);
  });
}

/**
 * For a request refused before its body was read: closes the connection after the reply when the
 * declared body is over the route's limit (it would have been refused 413 anyway) or is chunked with no
 * declared length (node would discard it for as long as the client sends: no limit applies to a body
 * nobody reads). A body within the limit is left to node, which discards it as it comes (no buffer, no
 * parse) and keeps the connection: a client that sends its whole body before reading the reply — an
 * agent whose token expired mid-upload — then gets its 401/403 rather than a connection reset.
 */
export function closeIfOverLimit(request: FastifyRequest, reply: FastifyReply): void {
  const declared = request.headers['content-length'];
  const unbounded = declared === undefined && request.headers['transfer-encoding'] !== undefined;
  if (unbounded || Number(declared) > request.routeOptions.bodyLimit) {
    void reply.header('connection', 'close');
  }
}

/** Runs `check` for a request whose body is not read yet; a refusal closes as `closeIfOverLimit` says, then is thrown on. */
export async function refusedUnread<T>(request: FastifyRequest, reply: FastifyReply, check: () => Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (error) {
    closeIfOverLimit(request, reply);
    throw error;
  }
}

function refusalBeforeBody(request: FastifyRequest, notFound: (request: FastifyRequest) => Error): Error | undefined {
  if (request.method === 'GET' || request.method === 'HEAD') {
    return undefined;
  }
  if (request.is404) {
    return hasBody(request) ? notFound(request) : undefined;
  }
  const mediaType = mediaTypeOf(request.headers['content-type']);
  if (mediaType !== undefined && CROSS_SITE_MEDIA_TYPES.has(mediaType) && (request.routeOptions.config as CrossSiteBodyConfig).refuseCrossSiteBodies === true) {
    return new UnsupportedMediaTypeError(mediaType);
  }
  return undefined;
}

/** `text/plain;charset=UTF-8` → `text/plain`; undefined without a header. */
function mediaTypeOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const end = header.indexOf(';');
  return (end < 0 ? header : header.slice(0, end)).trim().toLowerCase();
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
