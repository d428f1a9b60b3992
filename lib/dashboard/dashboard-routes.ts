import type { DatabaseClock } from '../db/database-clock.js';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import type { Knex } from 'knex';
import { TokenRefused } from '../auth/api-token.js';
import { authenticateRequest, checkToken, presentedToken, TOKEN_COOKIE } from '../auth/request-principal.js';
import type { Principal } from '../auth/roles.js';
import { refusedUnread } from '../http/before-body-checks.js';
import { verifiedClientCertificate } from '../http/client-certificate.js';
import { clientGoneSignal } from '../http/client-gone-signal.js';
import { isCrossOriginWrite } from '../http/cross-origin.js';
import { errorReply } from '../http/error-envelope.js';
import { ForbiddenError } from '../http/http-errors.js';
import { NO_BODY_LIMIT } from '../http/route-registration.js';
import type { KeylimeService } from '../http/keylime-service.js';
import { ConcurrencyLimiter } from '../timing/concurrency-limiter.js';
import { statusFreshnessBounds, type FreshnessConfig } from '../verifier/freshness-bounds.js';
import { visibleTenant, type VerifierAccess } from '../verifier/verifier-access.js';
import { errorPage, loginPage, nodePage, nodesPage, overviewPage, policiesPage } from './dashboard-pages.js';
import { DashboardQueries, NODE_SORTS, type NodeQuery, type NodeSort } from './dashboard-queries.js';
import { EVENT_STREAM_HEADERS, MAX_WATCHED_NODES, streamDashboardEvents } from './dashboard-events.js';
import { SharedOverview } from './shared-overview.js';
import { StreamSlots } from './stream-slots.js';

export interface DashboardDeps {
  readonly knex: Knex;
  readonly access: VerifierAccess;
  /** The pull timing and bounds the status API judges freshness by (`statusFreshnessBounds`). */
  readonly config: Readonly<FreshnessConfig>;
  /** The database's clock, which stamped the successes the pages judge (`DashboardQueries`), on its latest reading. */
  readonly clock: Pick<DatabaseClock, 'latestNowMs'>;
}

/** Served as /dashboard/static/<name>: the stylesheet and the live-update script, read once. */
const STATIC_DIR = new URL('../../../lib/dashboard/static/', import.meta.url);
const STATIC_FILES: Readonly<Record<string, string>> = { 'dashboard.js': 'text/javascript; charset=utf-8', 'dashboard.css': 'text/css; charset=utf-8' };
const MAX_SEARCH_LENGTH = 200;
/** Live-update streams open at once: each runs the overview query every tick (≈ 50 ms at 10,000 agents). */
const MAX_EVENT_STREAMS = 32;
/** Of those, the most one tenant's tokens (or one client certificate) hold: no tenant takes them all. */
const MAX_EVENT_STREAMS_PER_HOLDER = 8;
/** Streams a holder keeps when others want slots and none is free: 8 holders are always served. */
const FAIR_SHARE_OF_EVENT_STREAMS = 4;
const MAX_PAGE = 1_000_000;
/**
 * Pages made at once, per process: each runs its queries (a node page three at once) on the verifier's
 * own connection pool (10), which verdict writes need; a viewer reloading in a loop must not take it.
 */
const MAX_PAGE_RENDERS = 2;
/** Page requests waiting for a render slot; beyond, 503 with Retry-After. */
const MAX_WAITING_PAGES = 32;
const BUSY_RETRY_AFTER_SECONDS = 2;
/** A login form or JSON body: a token of a few hundred bytes. */
const LOGIN_BODY_LIMIT = 8192;

/** A year, as HSTS deployments commonly ask; no `includeSubDomains`: the verifier speaks for its own host name only. */
const STRICT_TRANSPORT_SECURITY = 'max-age=31536000';

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/**
 * The web dashboard at /dashboard on the verifier's listener (docs/dashboard.md): overview, node
 * table, node page, policies, live events, and a token → cookie login. Every page reads through
 * `DashboardQueries` scoped to the viewer's tenant; a client certificate sees every tenant. The pages
 * are plain HTML (they work without JavaScript); `dashboard.js` only applies live updates.
 */
export function registerDashboard(service: KeylimeService, deps: DashboardDeps): void {
  const lateAfterSeconds = 3 * deps.config.quoteInterval + 5;
  const queries = new DashboardQueries(deps.knex, lateAfterSeconds, statusFreshnessBounds(deps.config), () => deps.clock.latestNowMs() / 1000);
  const tickMs = Math.round(Math.min(2, Math.max(0.5, deps.config.quoteInterval)) * 1000);
  const assets = new Map(Object.keys(STATIC_FILES).map((name) => [name, readFileSync(new URL(name, STATIC_DIR), 'utf8')]));
  const tokens = deps.access.tokens;
  const slots = new StreamSlots(MAX_EVENT_STREAMS, MAX_EVENT_STREAMS_PER_HOLDER, FAIR_SHARE_OF_EVENT_STREAMS);
  // The streams' overview: once per tenant per tick, one at a time, whatever number of tabs are open.
  const overviews = new SharedOverview((tenant) => queries.overview(tenant), tickMs);
  const renders = new ConcurrencyLimiter(MAX_PAGE_RENDERS);
  const streamQueries = { overview: (tenant: string | undefined) => overviews.get(tenant), nodesByIds: queries.nodesByIds.bind(queries) };

  void service.app.register(async (app: FastifyInstance) => {
    // Over TLS (always, but in-process tests) the browser keeps to HTTPS for this host (RFC 6797): a
    // later http:// address, typed or linked, is not asked on the network, where an attacker could
    // answer it with a login form of its own and take the token pasted into it.
    app.addHook('onSend', async (request, reply) => {
      if ((request.raw.socket as TLSSocket | null)?.encrypted === true) void reply.header('strict-transport-security', STRICT_TRANSPORT_SECURITY);
    });
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: LOGIN_BODY_LIMIT }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    });
    // The shell's mapping (a body over the limit is a 413), as an HTML page.
    app.setErrorHandler(async (error: Error, request, reply) => {
      const { code, status } = errorReply(error, request.routeOptions.bodyLimit);
      if (code >= 500) {
        request.log.error({ err: error }, 'dashboard page failed');
        return sendPage(reply.code(500), errorPage(undefined, 'Error', 'The page could not be made; see the verifier log.'));
      }
      request.log.info({ code, status }, 'dashboard request refused');
      return sendPage(reply.code(code), errorPage(undefined, 'Error', status));
    });

    /**
     * The viewer, or a redirect to the login page already sent when the request carries no credential
     * that is admitted. A check that could not be made (the revocations unreadable: database down) is
     * thrown, a 500 page: the viewer is not logged out, nor told their token is bad.
     */
    const viewer = async (request: FastifyRequest, reply: FastifyReply): Promise<Principal | undefined> => {
      try {
        return await authenticateRequest(request, verifiedClientCertificate(request), tokens, 'read', 'header-or-cookie');
      } catch (error) {
        if (!(error instanceof TokenRefused || error instanceof ForbiddenError)) throw error;
        await reply.code(303).header('location', '/dashboard/login').send();
        return undefined;
      }
    };

    app.get('/dashboard/static/:name', async (request, reply) => {
      const name = (request.params as { name: string }).name;
      const type = STATIC_FILES[name];
      const text = assets.get(name);
      if (type === undefined || text === undefined) return reply.code(404).type('text/plain').send('not found');
      return reply.header('content-type', type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(text);
    });

    // A cookie that cannot be used (two of them: `presentedToken`) is named here, where its pages send the viewer.
    app.get('/dashboard/login', async (request, reply) => sendPage(reply, loginPage(unusableCookie(request))));

    /**
     * Login CSRF: a page of another site could post its own token to the login form and have the
     * operator's browser show the attacker's fleet (or log the operator out): refused, as the admin API
     * refuses a cross-origin write, before the body is read.
     */
    const sameOriginOnly = (request: FastifyRequest, reply: FastifyReply): Promise<void> =>
      refusedUnread(request, reply, async () => {
        if (isCrossOriginWrite(request)) throw new ForbiddenError('cross-origin request refused');
      });

    // The login and logout forms read a small body at most.
    app.post('/dashboard/login', { bodyLimit: LOGIN_BODY_LIMIT, onRequest: sameOriginOnly }, async (request, reply) => {
      const token = String((request.body as Record<string, unknown> | undefined)?.['token'] ?? '').trim();
      try {
        await checkToken(token, tokens);
      } catch (error) {
        // Only a refusal is the token's fault; the database's error is not shown on the page.
        if (!(error instanceof TokenRefused)) throw error;
        return sendPage(reply.code(401), loginPage(error.message));
      }
      // The token's life left on the clock it is judged on (`tokens.now`), not this host's.
      const maxAge = Math.max(0, Number(decodeJwt(token).exp) - Math.floor(tokens.now().getTime() / 1000));
      return reply
        .code(303)
        .header('set-cookie', `${TOKEN_COOKIE}=${token}; Path=/; Max-Age=${maxAge}; HttpOnly; Secure; SameSite=Strict`)
        .header('location', '/dashboard')
        .send();
    });

    app.post('/dashboard/logout', { bodyLimit: NO_BODY_LIMIT, onRequest: sameOriginOnly }, async (_request, reply) =>
      reply
        .code(303)
        .header('set-cookie', `${TOKEN_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict`)
        .header('location', '/dashboard/login')
        .send(),
    );

    /**
     * A read-only page: the viewer is admitted (or sent to the login page), then `render` makes the
     * HTML, at most `MAX_PAGE_RENDERS` at once (token check included: it reads the revocations). A
     * request whose client leaves while it waits leaves the queue (its place goes to the next viewer)
     * and runs no query.
     */
    const page =
      (render: (principal: Principal, request: FastifyRequest, reply: FastifyReply) => Promise<string>) =>
      async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
        if (renders.queued >= MAX_WAITING_PAGES) return sendBusy(reply);
        const clientGone = clientGoneSignal(reply);
        try {
          return await renders.run(async () => {
            const principal = await viewer(request, reply);
            return principal === undefined ? reply : sendPage(reply, await render(principal, request, reply));
          }, clientGone);
        } catch (error) {
          // The client hung up before its turn: no one reads the answer.
          if (clientGone.aborted && error === clientGone.reason) return sendBusy(reply);
          throw error;
        }
      };

    // The overview page shows the live streams' reading when one is fresh (one tick), as they do.
    app.get(
      '/dashboard',
      page(async (principal) => overviewPage(principal, await overviews.get(visibleTenant(principal)))),
    );

    app.get(
      '/dashboard/nodes',
      page(async (principal, request) => {
        const query = nodeQuery(request.query as Record<string, unknown>);
        return nodesPage(principal, query, await queries.nodes(visibleTenant(principal), query));
      }),
    );

    app.get(
      '/dashboard/nodes/:agentId',
      page(async (principal, request, reply) => {
        const agentId = (request.params as { agentId: string }).agentId;
        const node = await queries.node(visibleTenant(principal), agentId);
        if (node === undefined) {
          void reply.code(404);
          return errorPage(principal, 'Not found', 'No such node that you can see.');
        }
        return nodePage(principal, node, await queries.timeline(visibleTenant(principal), node));
      }),
    );

    app.get(
      '/dashboard/policies',
      page(async (principal, request) => policiesPage(principal, await queries.policiesInUse(visibleTenant(principal), pageNumber(request.query as Record<string, unknown>)))),
    );

    app.get('/dashboard/events', async (request, reply) => {
      // Before a slot, outside the page limit: a slot is its holder's (StreamSlots), known only once the
      // credential is checked; the check is one revocation read by key after the signature, as every
      // admin API request makes unlimited, and a page's queries are what the page limit bounds.
      const principal = await viewer(request, reply);
      if (principal === undefined) return reply;
      const watched = watchedNodes(request.query as Record<string, unknown>);
      if (watched === undefined) return reply.code(400).type('text/plain').send(`at most ${MAX_WATCHED_NODES} nodes per live view`);
      // A HEAD (fastify answers one for every GET route) is told what a stream would be, and opens none: a
      // stream would hold a slot and tick, with nothing to send, until the client closes its connection.
      if (request.method === 'HEAD') return reply.code(200).headers(EVENT_STREAM_HEADERS).send();
      const token = principal.kind === 'token' ? presentedToken(request, 'header-or-cookie') : undefined;
      // A token is checked again on every tick: the stream ends when it expires or is revoked; a client
      // certificate too: the stream ends when it expires.
      const stillValid =
        token === undefined ? () => Promise.resolve(verifiedClientCertificate(request) !== undefined) : () => checkToken(token, tokens).then(() => true, () => false);
      let stop = (): void => {};
      // A holder over its fair share loses this stream to a holder under it (StreamSlots).
      const release = slots.take(principal, () => stop());
      if (release === undefined) {
        // The pages themselves still work; the tab's live view is off until it is reloaded.
        return reply.code(503).header('retry-after', '30').type('text/plain').send('too many live views open');
      }
      // The stream releases the slot when its connection closes, also when it closed during the checks above.
      stop = streamDashboardEvents(request, reply, { queries: streamQueries, tenant: visibleTenant(principal), watched, tickMs, stillValid, onClose: release });
      return reply;
    });
  });
}

/** Why the request's dashboard cookie is refused before it is checked, if it is. */
function unusableCookie(request: FastifyRequest): string | undefined {
  try {
    presentedToken(request, 'header-or-cookie');
    return undefined;
  } catch (error) {
    if (error instanceof TokenRefused) return error.message;
    throw error;
  }
}

function sendPage(reply: FastifyReply, page: string): FastifyReply {
  return reply.headers(PAGE_HEADERS).send(page);
}

function sendBusy(reply: FastifyReply): FastifyReply {
  return sendPage(reply.code(503).header('retry-after', String(BUSY_RETRY_AFTER_SECONDS)), errorPage(undefined, 'Busy', 'The dashboard is busy: reload in a moment.'));
}

/** The nodes a live view watches (`?agent=<id>`, repeated), distinct; undefined when more than `MAX_WATCHED_NODES`. */
function watchedNodes(raw: Record<string, unknown>): string[] | undefined {
  const given = raw['agent'];
  const ids = new Set((Array.isArray(given) ? given : [given]).filter((id): id is string => typeof id === 'string'));
  return ids.size > MAX_WATCHED_NODES ? undefined : [...ids];
}

/** The node table's query string, bounded: unknown sorts fall back to the id, pages to 1. */
function nodeQuery(raw: Record<string, unknown>): NodeQuery {
  const text = (name: string): string => (typeof raw[name] === 'string' ? (raw[name] as string) : '');
  const sort = text('sort');
  return {
    search: text('q').trim().slice(0, MAX_SEARCH_LENGTH),
    sort: Object.hasOwn(NODE_SORTS, sort) ? (sort as NodeSort) : 'id',
    descending: text('dir') === 'desc',
    page: pageNumber(raw),
  };
}

/** `?page=N` of a paged table, 1 when absent or out of bounds. */
function pageNumber(raw: Record<string, unknown>): number {
  const page = typeof raw['page'] === 'string' ? Number.parseInt(raw['page'], 10) : Number.NaN;
  return Number.isSafeInteger(page) && page >= 1 && page <= MAX_PAGE ? page : 1;
}
