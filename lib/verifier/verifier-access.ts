import type { FastifyRequest } from 'fastify';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { AuditLog } from '../audit/audit-log.js';
import { loadOrCreateAuditKey, type AuditSigningKey } from '../audit/audit-signing-key.js';
import { authenticateRequest, permissionOfMethod, principalOf, type TokenGate } from '../auth/request-principal.js';
import { principalSeesTenant, type Principal } from '../auth/roles.js';
import { TokenRevocations } from '../auth/token-revocations.js';
import type { DatabaseClock } from '../db/database-clock.js';
import { loadOrCreateTokenKey, type TokenSigningKey } from '../auth/token-signing-key.js';
import type { KeylimeService } from '../http/keylime-service.js';
import { isKeylimeAgentId } from '../http/validators.js';
import type { AdminAccess } from '../http/route-registration.js';
import { adminAuditEvent, agentIdParam, auditedRoute, recordChangesOf, recordedInTransaction } from './admin-change-record.js';
import { LivenessNotEnrolled, VerifierAgentNotFound } from './verifier-errors.js';

/** The tenant of agents enrolled with a client certificate or before tenants existed. */
export const DEFAULT_TENANT = 'default';

/** Who may use the verifier's admin routes and dashboard, and where their actions are recorded. */
export interface VerifierAccess {
  readonly tokenKey: TokenSigningKey;
  /** The revoked tokens (`DELETE /v2.x/tokens/{jti}`). */
  readonly revocations: TokenRevocations;
  /** How the admin routes and the dashboard check a bearer token: `tokenKey`'s signature, not revoked. */
  readonly tokens: TokenGate;
  readonly auditKey: AuditSigningKey;
  readonly auditLog: AuditLog;
  /** The admin routes' gate: certificate or bearer token, role by method, and the agent's tenant. */
  readonly admit: AdminAccess;
}

/**
 * Loads (or makes, on first start) the token and audit keys in the data dir. An admin request is
 * admitted with a client certificate (every tenant) or a bearer token whose role allows the method
 * (`GET` read, `DELETE` admin, others operator) and, on `/agents/{id}…` and `/liveness/{id}` (nodes
 * without a TPM, their own table), whose tenant owns the node:
 * another tenant's agent is answered 404, exactly as an unknown one, so its existence does not leak.
 * Named policies are narrowed to the token's tenant by their routes (`PolicyScope`), not here.
 */
export function createVerifierAccess(dataDir: string, knex: Knex, clock: Pick<DatabaseClock, 'latestNowMs'>): VerifierAccess {
  const tokenKey = loadOrCreateTokenKey(dataDir);
  const auditKey = loadOrCreateAuditKey(dataDir);
  const revocations = new TokenRevocations(knex);
  // A token's expiry is judged on the latest the database's clock may read: never admitted late.
  const now = (): Date => new Date(clock.latestNowMs());
  const tokens: TokenGate = { publicKey: tokenKey.publicKey, isRevoked: (tokenId) => revocations.isRevoked(tokenId), now };
  return {
    tokenKey,
    revocations,
    tokens,
    auditKey,
    auditLog: new AuditLog(knex, auditKey),
    admit: async (request, certificate) => {
      const principal = await authenticateRequest(request, certificate, tokens, permissionOfMethod(request.method), 'header');
      const agentId = agentIdParam(request);
      // The path's id is not validated yet: one that is not an agent id is refused 400 by the route's
      // params before its handler runs, so it is not looked up (one holding a NUL, which PostgreSQL
      // cannot compare as text, made this query fail: a 500 for any token holder).
      if (principal.kind === 'token' && agentId !== undefined && isKeylimeAgentId(agentId)) {
        const liveness = isLivenessRoute(request);
        const row = (await knex(liveness ? 'verifier_liveness' : 'verifier_agents').select('tenant').where({ agent_id: agentId }).first()) as { tenant: string } | undefined;
        if (row !== undefined && !principalSeesTenant(principal, row.tenant)) throw liveness ? new LivenessNotEnrolled(agentId) : new VerifierAgentNotFound(agentId);
      }
    },
  };
}

/** The tenant a request acts for: its token's, or `default` for a client certificate. */
export function requestTenant(request: FastifyRequest): string {
  const principal = principalOf(request);
  return principal?.kind === 'token' ? principal.tenant : DEFAULT_TENANT;
}

/** Whether the caller may see (hence change) a node of `tenant`. */
export type SeesTenant = (tenant: string) => boolean;

/**
 * Whether the request may see a node of a tenant, for a route to ask again under the node's lock: the
 * admin gate (`admit`) asked on the headers, before the body, and the node may have been enrolled since.
 */
export function seesTenant(request: FastifyRequest): SeesTenant {
  const principal = principalOf(request);
  return (tenant) => principal === undefined || principalSeesTenant(principal, tenant);
}

/** The only tenant a request may see, or undefined when it sees all (a client certificate). */
export function visibleTenant(principal: Principal | undefined): string | undefined {
  return principal?.kind === 'token' ? principal.tenant : undefined;
}

/**
 * Audits every admin request that may change something (not `GET`). A route that changes something
 * appends its record inside the change's transaction (`changeRecord`), so the change and its record
 * commit together or neither does. Any other such request (refused, failed, or answered before a
 * change) is appended here as its reply leaves, with the status it got: best effort, since it changed
 * nothing, and a record that cannot be written is logged at error. A success that no change recorded
 * (a route without `changeRecord`) is answered 500 when its record cannot be written. `changeRecord`
 * also refuses a token `access.revocations` revoked, or expired at `access.tokens.now()`, since the request was admitted.
 */
export function auditAdminActions(service: KeylimeService, access: Pick<VerifierAccess, 'auditLog' | 'revocations' | 'tokens'>, log: Logger): void {
  const audit = access.auditLog;
  const recorder = { audit, revocations: access.revocations, now: () => access.tokens.now() };
  const audited = new WeakSet<FastifyRequest>();
  service.app.addHook('onRequest', async (request) => {
    if (!READS.has(request.method)) recordChangesOf(request, recorder);
  });
  service.app.addHook('onSend', async (request, reply, payload) => {
    // Once per request: the error reply of a failed append passes through here again.
    if (principalOf(request) === undefined || READS.has(request.method) || audited.has(request)) return payload;
    audited.add(request);
    const success = reply.statusCode < 400;
    if (success && recordedInTransaction(request)) return payload;
    try {
      await audit.append(adminAuditEvent(request, reply.statusCode));
    } catch (error) {
      log.error({ err: error, route: auditedRoute(request), status: reply.statusCode }, 'admin action not audited');
      if (success) throw error;
    }
    return payload;
  });
}

/** Methods that change nothing, hence are not audited. */
const READS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

function isLivenessRoute(request: FastifyRequest): boolean {
  return (request.routeOptions.url ?? '').includes('/liveness/');
}

