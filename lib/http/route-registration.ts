import type { PeerCertificate } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidConfig } from '../../interfaces/errors.js';
import { versionPrefixes, type ApiVersionPolicy } from './api-version.js';
import { refusedUnread, type CrossSiteBodyConfig } from './before-body-checks.js';
import type { BodyBudget } from './body-budget.js';
import { verifiedClientCertificate } from './client-certificate.js';
import { clientCertificateRefusal } from './client-certificate-refusal.js';
import { isCrossOriginWrite } from './cross-origin.js';
import { requireEmpty, validateDto, type DtoClass, type RequestLocation } from './dto-validation.js';
import { validateFast, type FastDto } from './fast-path-checks.js';
import { ForbiddenError } from './http-errors.js';
import { ADMIN_MAX_JSON_VALUES, DEFAULT_MAX_JSON_VALUES } from './json-guard.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

/** A `rawBody` route's body as the service's parser hands it: text when small, bytes when large (`RouteContext.rawBody`). */
export type RawRequestBody = string | Uint8Array;

/** What a handler receives: validated, typed inputs, and the raw request/reply for the envelope helpers. */
export interface RouteContext<P, Q, B, A = undefined> {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  /** What the route's `authenticate` answered; undefined on a route without one. */
  readonly authenticated: A;
  /**
   * On a `rawBody` route, the body unparsed: its text (UTF-8 decoded) up to `OFF_THREAD_REPLY_BYTES`, its
   * bytes above, to be decoded where it is parsed (`requestBodyText`, off the event loop: 30–50 ms for
   * 29 MiB); undefined elsewhere and without a body.
   */
  readonly rawBody: RawRequestBody | undefined;
  /** The API version the URL asked for (`2.6`; `/v2/` resolves to the latest 2.x); undefined on unversioned routes. */
  readonly apiVersion: string | undefined;
  /** The verified client certificate, when the request came with one (always set on admin routes). */
  readonly clientCertificate: PeerCertificate | undefined;
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
}

/**
 * The DTO of one request location: a class-validator class, or one behind a fast path (`FastDto`: the
 * fast path answers the shapes it is sure the class accepts, the class decides and refuses the rest).
 */
export type RouteDto<T extends object> = DtoClass<T> | FastDto<T>;

/**
 * One route. `url` is the path after the version prefix (`/agents/:agent_id`), or the whole path of an
 * unversioned route (`/version`). A route whose URL has parameters must name a `params` DTO; without a
 * `query` DTO any query string is refused, without a `body` DTO any non-empty body is refused.
 * The handler answers with `ok(reply, results)` (or another envelope helper) or throws an `IronlimeError`.
 */
export interface RouteSpec<P extends object, Q extends object, B extends object, A = undefined> {
  readonly method: HttpMethod;
  readonly url: string;
  /** Default true: served under every supported `/v<x.y>` (within min/max) — see api-version.ts. */
  readonly versioned?: boolean;
  readonly minVersion?: string;
  readonly maxVersion?: string;
  /** Requires a client certificate verified against the service's CA; else 403 saying why (`clientCertificateRefusal`). */
  readonly admin?: boolean;
  readonly params?: RouteDto<P>;
  readonly query?: RouteDto<Q>;
  readonly body?: RouteDto<B>;
  /**
   * Runs on the request's headers once params and query passed, before the body is even read (a
   * fastify `preParsing` hook), so a caller without credentials costs no body reading or parsing and
   * gets its 401/403, never a 400 or 413 about its body; throws to refuse. It must not look at the
   * body. Its answer is the handler's `authenticated`. `reply` is there to watch the connection (the
   * client may close it while this waits), not to answer: a refusal is thrown.
   */
  readonly authenticate?: (request: FastifyRequest, params: P, reply: FastifyReply) => Promise<A>;
  /**
   * The handler gets the body unparsed (`RouteContext.rawBody`) and decodes, parses and validates it
   * itself, e.g. off the event loop; the body limit still applies. Not with a `body` DTO.
   */
  readonly rawBody?: boolean;
  /** Body limit of this route in bytes (1 KiB to 256 MiB); default the service's. */
  readonly bodyLimit?: number;
  /**
   * JSON values this route's body may hold, counted before it is parsed (`checkJsonText`); default
   * `ADMIN_MAX_JSON_VALUES` on an admin route, else `DEFAULT_MAX_JSON_VALUES`. Set it from what the
   * route's DTO can hold. A `rawBody` route's handler passes its own to `parseRequestBody`.
   */
  readonly maxJsonValues?: number;
  /**
   * Bounds the bytes of this route's bodies in flight at once: checked on arrival, after the admin
   * check, or on a route with `authenticate` once the caller is authenticated (a caller without valid
   * credentials holds none of it).
   */
  readonly bodyBudget?: BodyBudget;
  /** Replies to this route's errors instead of the scope's handler (the push routes' JSON:API errors). */
  readonly errorHandler?: (error: unknown, request: FastifyRequest, reply: FastifyReply) => FastifyReply;
  readonly handler: (context: RouteContext<P, Q, B, A>) => Promise<FastifyReply> | FastifyReply;
}

/**
 * Decides an admin request on arrival, given the client certificate TLS verified (or undefined):
 * resolves to admit it, throws an IronlimeError to refuse it. A service without one admits exactly
 * the requests that carry a verified certificate.
 */
export type AdminAccess = (request: FastifyRequest, certificate: PeerCertificate | undefined) => Promise<void>;

/** The fastify route config the service's body parser reads: a `rawBody` route's text stays unparsed. */
export interface RawBodyConfig {
  readonly rawBody?: boolean;
  /** The route's `maxJsonValues` (the parser's default when absent). */
  readonly maxJsonValues?: number;
}

export interface RouteSettings {
  /** Needed by versioned routes only. */
  readonly versions?: ApiVersionPolicy;
  readonly insecureAdmin: boolean;
  readonly adminAccess?: AdminAccess;
}

/** Body limit of a route that takes no body: any body is refused, so reading more is waste. */
export const NO_BODY_LIMIT = 1024;

/** What a route with `authenticate` decided before its body was read, for its handler. */
interface CheckedBeforeBody<P, Q, A> {
  readonly params: P;
  readonly query: Q;
  readonly authenticated: A;
}

/**
 * Registers `spec` on `app` under each of its URLs. Order per request: the admin check runs on
 * arrival; on a route with `authenticate`, params, query and `authenticate` run next, still before
 * the body is read; then fastify reads and bounds the body (1 KiB on a route without a body), params
 * and query are validated (when not done yet), the body is validated, and only then the handler runs
 * — so a refused request touches nothing.
 */
export function addRoute<P extends object, Q extends object, B extends object, A = undefined>(
  app: FastifyInstance,
  spec: RouteSpec<P, Q, B, A>,
  settings: RouteSettings,
): void {
  if (!spec.url.startsWith('/')) {
    throw new InvalidConfig(`route ${spec.method} ${spec.url}`, 'url must start with /');
  }
  if (spec.url.includes(':') && spec.params === undefined) {
    throw new InvalidConfig(`route ${spec.method} ${spec.url}`, 'has path parameters but no params DTO');
  }
  if (spec.rawBody === true && spec.body !== undefined) {
    throw new InvalidConfig(`route ${spec.method} ${spec.url}`, 'takes its body raw or through a body DTO, not both');
  }
  const versions = settings.versions;
  if (spec.versioned !== false && versions === undefined) {
    throw new InvalidConfig(`route ${spec.method} ${spec.url}`, 'is versioned but the service has no API version policy');
  }
  const rawBody = spec.rawBody === true;
  const maxJsonValues = spec.maxJsonValues ?? (spec.admin === true ? ADMIN_MAX_JSON_VALUES : DEFAULT_MAX_JSON_VALUES);
  if (!Number.isInteger(maxJsonValues) || maxJsonValues < 1) {
    throw new InvalidConfig(`route ${spec.method} ${spec.url}`, 'maxJsonValues must be a positive integer');
  }
  const config: RawBodyConfig & CrossSiteBodyConfig = { rawBody, maxJsonValues, refuseCrossSiteBodies: spec.admin === true };
  const checkParams = locationCheck(spec.params, 'params');
  const checkQuery = locationCheck(spec.query, 'query');
  const checkBody = rawBody ? () => EMPTY as B : locationCheck(spec.body, 'body');
  const urls =
    spec.versioned === false || versions === undefined
      ? [{ url: spec.url, version: undefined }]
      : versionPrefixes(versions, spec.minVersion, spec.maxVersion).map((p) => ({
          url: spec.url === '/' ? `${p.prefix}/` : `${p.prefix}${spec.url}`,
          version: p.version,
        }));
  if (urls.length === 0) {
    throw new InvalidConfig(`route ${spec.method} ${spec.url}`, 'no supported API version is within its min/max');
  }
  const bodyLimit = spec.bodyLimit ?? (spec.body === undefined && !rawBody ? NO_BODY_LIMIT : undefined);
  const admin = spec.admin === true && !settings.insecureAdmin;
  const authenticate = spec.authenticate;
  const budget = spec.bodyBudget;
  const onRequest = [
    ...(admin
      ? [
          async (request: FastifyRequest, reply: FastifyReply) => refusedUnread(request, reply, () => admitAdmin(request, settings.adminAccess)),
        ]
      : []),
    ...(budget === undefined || authenticate !== undefined ? [] : [async (request: FastifyRequest, reply: FastifyReply) => budget.admit(request, reply)]),
  ];
  const checkedBeforeBody = new WeakMap<FastifyRequest, CheckedBeforeBody<P, Q, A>>();
  const checkBeforeBody =
    authenticate === undefined
      ? undefined
      : async (request: FastifyRequest, reply: FastifyReply): Promise<undefined> => {
          await refusedUnread(request, reply, async () => {
            const params = checkParams(request.params);
            const query = checkQuery(request.query);
            checkedBeforeBody.set(request, { params, query, authenticated: await authenticate(request, params, reply) });
            budget?.admit(request, reply);
          });
          return undefined;
        };
  for (const { url, version } of urls) {
    app.route({
      method: spec.method,
      url,
      ...(bodyLimit === undefined ? {} : { bodyLimit }),
      config,
      ...(onRequest.length === 0 ? {} : { onRequest }),
      ...(checkBeforeBody === undefined ? {} : { preParsing: checkBeforeBody }),
      ...(spec.errorHandler === undefined ? {} : { errorHandler: spec.errorHandler }),
      handler: async (request, reply) => {
        const checked = checkedBeforeBody.get(request);
        const params = checked?.params ?? checkParams(request.params);
        const query = checked?.query ?? checkQuery(request.query);
        const authenticated = checked === undefined ? (undefined as A) : checked.authenticated;
        const body = checkBody(request.body);
        const handle = (): Promise<FastifyReply> | FastifyReply => spec.handler({
          params,
          query,
          body,
          authenticated,
          rawBody: rawBody ? (request.body as RawRequestBody | undefined) : undefined,
          apiVersion: version,
          clientCertificate: verifiedClientCertificate(request),
          request,
          reply,
        });
        // A body counted in the route's budget stays counted while the handler holds it, the client gone or not.
        return budget === undefined ? handle() : budget.whileHandled(request, handle);
      },
    });
  }
}

/** The value of a location without a DTO, which must be empty. */
const EMPTY = Object.freeze({});

/** The check of one location, chosen once per route: empty without a DTO, else the DTO behind its fast path if any. */
function locationCheck<T extends object>(dto: RouteDto<T> | undefined, location: RequestLocation): (plain: unknown) => T {
  if (dto === undefined) {
    return (plain) => {
      requireEmpty(plain, location);
      return EMPTY as T;
    };
  }
  if (typeof dto === 'function') {
    return (plain) => validateDto(dto, plain, location);
  }
  return (plain) => validateFast(dto, plain, location);
}

/**
 * Admits an admin request on arrival: the service's `adminAccess` decides, or a verified client
 * certificate suffices. A state-changing request a browser marks as sent by a page of another origin
 * is refused first (`isCrossOriginWrite`).
 */
async function admitAdmin(request: FastifyRequest, adminAccess: AdminAccess | undefined): Promise<void> {
  if (isCrossOriginWrite(request)) {
    throw new ForbiddenError('cross-origin request refused');
  }
  const certificate = verifiedClientCertificate(request);
  if (adminAccess !== undefined) {
    await adminAccess(request, certificate);
  } else if (certificate === undefined) {
    throw clientCertificateRefusal(request);
  }
}

