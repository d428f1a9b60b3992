import type { PeerCertificate } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidConfig } from '../../interfaces/errors.js';
import { versionPrefixes, type ApiVersionPolicy } from './api-version.js';
import { verifiedClientCertificate } from './client-certificate.js';
import { requireEmpty, validateDto, type DtoClass } from './dto-validation.js';
import { ForbiddenError } from './http-errors.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

/** What a handler receives: validated, typed inputs, and the raw request/reply for the envelope helpers. */
export interface RouteContext<P, Q, B> {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  /** The body's text as it came (UTF-8 decoded, not parsed) on a `rawBody` route; undefined elsewhere and without a body. */
  readonly bodyText: string | undefined;
  /** The API version the URL asked for (`2.6`; `/v2/` resolves to the latest 2.x); undefined on unversioned routes. */
  readonly apiVersion: string | undefined;
  /** The verified client certificate, when the request came with one (always set on admin routes). */
  readonly clientCertificate: PeerCertificate | undefined;
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
}

/**
 * One route. `url` is the path after the version prefix (`/agents/:agent_id`), or the whole path of an
 * unversioned route (`/version`). A route whose URL has parameters must name a `params` DTO; without a
 * `query` DTO any query string is refused, without a `body` DTO any non-empty body is refused.
 * The handler answers with `ok(reply, results)` (or another envelope helper) or throws an `IronlimeError`.
 */
export interface RouteSpec<P extends object, Q extends object, B extends object> {
  readonly method: HttpMethod;
  readonly url: string;
  /** Default true: served under every supported `/v<x.y>` (within min/max) — see api-version.ts. */
  readonly versioned?: boolean;
  readonly minVersion?: string;
  readonly maxVersion?: string;
  /** Requires a client certificate verified against the service's CA; else 403 "client certificate required". */
  readonly admin?: boolean;
  readonly params?: DtoClass<P>;
  readonly query?: DtoClass<Q>;
  readonly body?: DtoClass<B>;
  /**
   * The handler gets the body's text unparsed (`RouteContext.bodyText`) and parses and validates it
   * itself, e.g. off the event loop; the body limit still applies. Not with a `body` DTO.
   */
  readonly rawBody?: boolean;
  /** Body limit of this route in bytes (1 KiB to 256 MiB); default the service's. */
  readonly bodyLimit?: number;
  readonly handler: (context: RouteContext<P, Q, B>) => Promise<FastifyReply> | FastifyReply;
}

/**
 * Decides an admin request on arrival, given the client certificate TLS verified (or undefined):
 * resolves to admit it, throws an IronlimeError to refuse it. A service without one admits exactly
 * the requests that carry a verified certificate.
 */
export type AdminAccess = (request: FastifyRequest, certificate: PeerCertificate | undefined) => Promise<void>;

/** The fastify route config of a `rawBody` route, which the service's body parser reads. */
export interface RawBodyConfig {
  readonly rawBody?: boolean;
}

export interface RouteSettings {
  readonly versions: ApiVersionPolicy;
  readonly insecureAdmin: boolean;
  readonly adminAccess?: AdminAccess;
}

/**
 * Registers `spec` on `app` under each of its URLs. Order per request: the admin check runs on
 * arrival (before the body is even read), then fastify reads and bounds the body, then params, query
 * and body are validated, and only then the handler runs — so a refused request touches nothing.
 */
export function addRoute<P extends object, Q extends object, B extends object>(
  app: FastifyInstance,
  spec: RouteSpec<P, Q, B>,
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
  const rawBody = spec.rawBody === true;
  const config: RawBodyConfig = { rawBody };
  const urls =
    spec.versioned === false
      ? [{ url: spec.url, version: undefined }]
      : versionPrefixes(settings.versions, spec.minVersion, spec.maxVersion).map((p) => ({
          url: spec.url === '/' ? `${p.prefix}/` : `${p.prefix}${spec.url}`,
          version: p.version,
        }));
  if (urls.length === 0) {
    throw new InvalidConfig(`route ${spec.method} ${spec.url}`, 'no supported API version is within its min/max');
  }
  const admin = spec.admin === true && !settings.insecureAdmin;
  for (const { url, version } of urls) {
    app.route({
      method: spec.method,
      url,
      ...(spec.bodyLimit === undefined ? {} : { bodyLimit: spec.bodyLimit }),
      config,
      onRequest: async (request) => {
        if (!admin) return;
        const certificate = verifiedClientCertificate(request);
        if (settings.adminAccess !== undefined) {
          await settings.adminAccess(request, certificate);
        } else if (certificate === undefined) {
          throw new ForbiddenError('client certificate required');
        }
      },
      handler: async (request, reply) => {
        const params = validateOrEmpty(spec.params, request.params, 'params');
        const query = validateOrEmpty(spec.query, request.query, 'query');
        const body = rawBody ? (Object.freeze({}) as B) : validateOrEmpty(spec.body, request.body, 'body');
        return spec.handler({
          params,
          query,
          body,
          bodyText: rawBody ? (request.body as string | undefined) : undefined,
          apiVersion: version,
          clientCertificate: verifiedClientCertificate(request),
          request,
          reply,
        });
      },
    });
  }
}

function validateOrEmpty<T extends object>(dto: DtoClass<T> | undefined, plain: unknown, location: 'params' | 'query' | 'body'): T {
  if (dto === undefined) {
    requireEmpty(plain, location);
    return Object.freeze({}) as T;
  }
  return validateDto(dto, plain, location);
}
