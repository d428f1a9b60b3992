import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Server as HttpsServer } from 'node:https';
import Fastify, { LogController } from 'fastify';
import { InvalidConfig } from '../../interfaces/errors.js';
import { checkApiVersionPolicy, type ApiVersionPolicy } from './api-version.js';
import { installBeforeBodyChecks } from './before-body-checks.js';
import { refuseLapsedClientCertificate } from './client-certificate.js';
import { DEFAULT_CLIENT_CA_ORIGIN, rememberClientCaOrigin } from './client-certificate-refusal.js';
import { installErrorHandlers, notFoundError } from './error-envelope.js';
import { DEFAULT_MAX_JSON_VALUES, parseRequestBody } from './json-guard.js';
import { clientErrorReply, frameworkErrorReply } from './malformed-requests.js';
import { OffThreadBodies } from './off-thread-bodies.js';
import { OFF_THREAD_REPLY_BYTES } from './off-thread-json.js';
import { requestBodyText } from './request-body-text.js';
import { addRoute, type AdminAccess, type RawBodyConfig, type RouteSpec } from './route-registration.js';
import { listenService, type ListenOptions, type ListeningAddress } from './service-lifecycle.js';
import { checkServerTimeouts, closeSilentConnections, nodeServerTimeoutOptions, type ServerTimeouts } from './server-timeouts.js';
import { httpsServerOptions, type ServiceTlsConfig } from './service-tls-config.js';

/** Logger levels at which each request's access line is written (`request completed`, debug). */
const ACCESS_LOG_LEVELS: ReadonlySet<string> = new Set(['debug', 'trace']);

/** Default request body limit: 1 MiB. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** Body limits a service may configure: 1 KiB to 256 MiB (runtime policies can be tens of MiB). */
export const MIN_BODY_LIMIT = 1024;
export const MAX_BODY_LIMIT = 256 * 1024 * 1024;
/**
 * Body limit of a public route that takes evidence (`POST /verify/evidence`): a quote, a UEFI event
 * log (≈ 100 KiB), an IMA list of ~100,000 entries (≈ 15 MiB) and a runtime policy of a few MiB. The
 * admin routes, which are refused before their body is read without a client certificate, keep the
 * service's (larger) limit for full-distribution policies.
 */
export const EVIDENCE_BODY_LIMIT = 32 * 1024 * 1024;

/** Default bound on a service's open connections: far above a fleet's keep-alive pool, below descriptor limits. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

export interface ServiceOptions {
  /** Used in logs and in the "listening on" line: `registrar`, `verifier`, `agent`, … */
  readonly name: string;
  /** Versions served under `/v<x.y>/` and the status text for others (see api-version.ts). */
  readonly apiVersions: ApiVersionPolicy;
  /** HTTPS settings; absent = plain HTTP (only the registrar's public port). */
  readonly tls?: ServiceTlsConfig;
  /**
   * Benchmarks only (`npm run bench -- push-http2`): with `tls`, offer HTTP/2 beside HTTP/1.1 on the
   * same port (ALPN picks). Not for serving: it costs the verifier more CPU per push attestation than
   * HTTP/1.1 (docs/push.md, "HTTP/2 measured"), and `maxHeaderBytes` and the headers and request
   * timeouts bound HTTP/1.1 requests only.
   */
  readonly http2ForBench?: boolean;
  /** Largest request body in bytes (default 1 MiB, between 1 KiB and 256 MiB). Routes may lower or raise it. */
  readonly bodyLimit?: number;
  /**
   * Open connections at most (default `DEFAULT_MAX_CONNECTIONS`); node closes any further one as it
   * arrives, so idle or slow clients cannot exhaust memory or descriptors whatever the time bounds.
   */
  readonly maxConnections?: number;
  /** Connection and request time bounds; absent fields take `DEFAULT_SERVER_TIMEOUTS`. */
  readonly timeouts?: Partial<ServerTimeouts>;
  /** Largest request header block in bytes (default node's, 16 KiB); beyond, node answers 431 before any route. */
  readonly maxHeaderBytes?: number;
  /** A pino (or compatible) logger; absent = silent. */
  readonly logger?: FastifyBaseLogger;
  /**
   * For in-process tests with `inject` only: admin routes accept requests without a client certificate.
   * Refused together with `tls`, so a TLS service can never run with it.
   */
  readonly insecureAdminForTests?: boolean;
  /** Who may use the admin routes (default: a client certificate verified against the CA; see `AdminAccess`). */
  readonly adminAccess?: AdminAccess;
}

/**
 * A Keylime-style HTTP(S) service: a fastify instance whose every reply is the `{code, status, results}`
 * envelope, with one error mapping, envelope 404s and version 400s, bounded JSON bodies (parsed as JSON
 * with any Content-Type or none, as Keylime does — the Python tenant sends none — but those a cross-site
 * page can send, refused 415 before the body is read: before-body-checks.ts; an empty body is no body),
 * and routes declared with `route()`: versioned paths, DTO validation before the handler, and per-route
 * client-certificate checks. `app` stays available for `inject` and hooks.
 */
export class KeylimeService {
  readonly name: string;
  readonly app: FastifyInstance;
  readonly apiVersions: ApiVersionPolicy;
  /** The TLS settings it started with (its certificate may have been renewed since: `useCertificate`). */
  readonly tls: ServiceTlsConfig | undefined;
  /** The threads that parse request bodies over 1 MiB: started on the first such body, ended when the service closes. */
  readonly largeBodies = new OffThreadBodies();
  private readonly insecureAdmin: boolean;
  private readonly adminAccess: AdminAccess | undefined;

  constructor(options: ServiceOptions) {
    if (typeof options.name !== 'string' || options.name.length === 0) {
      throw new InvalidConfig('name', 'must be a non-empty string');
    }
    checkApiVersionPolicy(options.apiVersions);
    const bodyLimit = checkBodyLimit(options.bodyLimit ?? DEFAULT_BODY_LIMIT, 'bodyLimit');
    const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (!Number.isInteger(maxConnections) || maxConnections < 1 || maxConnections > 1_000_000) {
      throw new InvalidConfig('maxConnections', 'must be an integer from 1 to 1000000');
    }
    if (options.insecureAdminForTests === true && options.tls !== undefined) {
      throw new InvalidConfig('insecureAdminForTests', 'cannot be combined with tls');
    }
    this.name = options.name;
    this.apiVersions = options.apiVersions;
    this.tls = options.tls;
    this.insecureAdmin = options.insecureAdminForTests === true;
    this.adminAccess = options.adminAccess;
    const timeouts = checkServerTimeouts(options.timeouts);
    const nodeServerOptions = { ...nodeServerTimeoutOptions(timeouts), ...(options.maxHeaderBytes === undefined ? {} : { maxHeaderSize: options.maxHeaderBytes }) };
    const https = options.tls === undefined ? undefined : { ...httpsServerOptions(options.tls), ...nodeServerOptions };
    const transport = https === undefined ? { http: nodeServerOptions } : options.http2ForBench === true ? { http2: true, https: { ...https, allowHTTP1: true } } : { https };
    const app = Fastify({
      // Fastify's overloads type one protocol per call; the instance is used as a FastifyInstance either way.
      ...(transport as { https?: typeof https }),
      ...(options.logger === undefined ? { logger: false } : { loggerInstance: options.logger }),
      // Fastify's own two info lines per request (received, completed) would log every push attestation
      // and every evidence request twice at the services' default level; refusals and failures keep their
      // info and error lines (error-envelope.ts), and the access line is at debug (below).
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit,
      requestTimeout: timeouts.requestMs,
      keepAliveTimeout: timeouts.keepAliveMs,
      connectionTimeout: timeouts.idleMs,
      forceCloseConnections: true,
      // Requests arriving while closing are served (or their connection is closed): every reply stays an envelope.
      return503OnClosing: false,
      routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
      // A malformed path or request line is answered in the envelope too (malformed-requests.ts).
      frameworkErrors: frameworkErrorReply,
      clientErrorHandler: clientErrorReply,
    }) as unknown as FastifyInstance;
    app.removeContentTypeParser(['application/json', 'text/plain']);
    // Bodies of too many values (the route's `maxJsonValues`) are refused before they are parsed, and
    // prototype keys and excessive depth before class-transformer sees the body. A body over 1 MiB is
    // parsed so in a worker thread: a push agent's evidence may be 32 MiB, 0.1–0.3 s of decoding,
    // counting and JSON.parse that held every other request.
    // A route declared with `rawBody` gets the body unparsed (a large one as bytes, not decoded here): it
    // parses it itself (off the event loop).
    const largeBodies = this.largeBodies;
    app.addHook('onClose', () => largeBodies.close());
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
      const config = request.routeOptions.config as RawBodyConfig;
      if (config.rawBody === true) {
        done(null, typeof body !== 'string' && body.length > OFF_THREAD_REPLY_BYTES ? body : requestBodyText(body));
      } else if (typeof body !== 'string' && body.length > OFF_THREAD_REPLY_BYTES) {
        largeBodies.parse(body, config.maxJsonValues ?? DEFAULT_MAX_JSON_VALUES).then(
          (value) => done(null, value),
          (error: Error) => done(error, undefined),
        );
      } else {
        try {
          done(null, parseRequestBody(requestBodyText(body), config.maxJsonValues));
        } catch (error) {
          done(error as Error, undefined);
        }
      }
    });
    if (options.logger !== undefined && ACCESS_LOG_LEVELS.has(options.logger.level)) {
      app.addHook('onResponse', async (request, reply) => {
        request.log.debug({ method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request completed');
      });
    }
    if (options.tls?.requestClientCert === true) {
      rememberClientCaOrigin(app.server as unknown as HttpsServer, options.tls.clientCaOrigin ?? DEFAULT_CLIENT_CA_ORIGIN);
    }
    if (options.tls?.requireClientCert === 'all') {
      // The handshake checked the certificate; a kept-alive connection outlives its expiry.
      app.addHook('onRequest', async (request) => refuseLapsedClientCertificate(request));
    }
    installErrorHandlers(app, options.apiVersions);
    installBeforeBodyChecks(app, (request) => notFoundError(options.apiVersions, request.url));
    closeSilentConnections(app.server, timeouts.headersMs, https !== undefined);
    app.server.maxConnections = maxConnections;
    this.app = app;
  }

  /** Declares one route (see `RouteSpec`); throws `InvalidConfig` at startup for an inconsistent one. */
  route<P extends object = Record<string, never>, Q extends object = Record<string, never>, B extends object = Record<string, never>, A = undefined>(
    spec: RouteSpec<P, Q, B, A>,
  ): void {
    if (spec.bodyLimit !== undefined) {
      checkBodyLimit(spec.bodyLimit, `route ${spec.method} ${spec.url}: bodyLimit`);
    }
    addRoute(this.app, spec, {
      versions: this.apiVersions,
      insecureAdmin: this.insecureAdmin,
      ...(this.adminAccess === undefined ? {} : { adminAccess: this.adminAccess }),
    });
  }

  /**
   * Serves new connections with another certificate, key and client CA (a renewed certificate:
   * `CertificateRenewal`), without a restart; connections open now keep theirs until they close.
   * Throws `InvalidConfig` for a plain-HTTP service or PEMs `httpsServerOptions` refuses.
   */
  useCertificate(pems: { readonly cert: string; readonly key: string; readonly ca: string }): void {
    if (this.tls === undefined) {
      throw new InvalidConfig('tls', `${this.name} serves plain HTTP: it has no certificate to replace`);
    }
    (this.app.server as HttpsServer).setSecureContext(httpsServerOptions({ ...this.tls, ...pems }));
  }

  /** Starts listening; see `listenService`. */
  listen(options: ListenOptions): Promise<ListeningAddress> {
    return listenService(this, options);
  }

  /** Stops accepting connections, closes open ones and waits for in-flight requests. */
  close(): Promise<void> {
    return this.app.close();
  }
}

/** `new KeylimeService(options)`. */
export function createService(options: ServiceOptions): KeylimeService {
  return new KeylimeService(options);
}

function checkBodyLimit(limit: number, field: string): number {
  if (!Number.isInteger(limit) || limit < MIN_BODY_LIMIT || limit > MAX_BODY_LIMIT) {
    throw new InvalidConfig(field, `must be an integer from ${MIN_BODY_LIMIT} to ${MAX_BODY_LIMIT}`);
  }
  return limit;
}
