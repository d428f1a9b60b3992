import type { FastifyRequest } from 'fastify';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { AuditLog } from '../audit/audit-log.js';
import { loadOrCreateAuditKey, type AuditSigningKey } from '../audit/audit-signing-key.js';
import { authenticateRequest, permissionOfMethod, principalOf, type TokenGate } from '../auth/request-principal.js';
import { principalName, principalSeesTenant, type Principal } from '../auth/roles.js';
import { TokenRevocations } from '../auth/token-revocations.js';
import { loadOrCreateTokenKey, type TokenSigningKey } from '../auth/token-signing-key.js';
import type { KeylimeService } from '../http/keylime-service.js';
import type { AdminAccess } from '../http/route-registration.js';
import { LivenessNotEnrolled, VerifierAgentNotFound } from './verifier-errors.js';

/** The tenant of agents enrolled with a client certificate or before tenants existed. */
export const DEFAULT_TENANT = 'default';
/** The audit stream of admin actions on no single agent (policies). */
const FLEET_STREAM = 'fleet';

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
export function createVerifierAccess(dataDir: string, knex: Knex): VerifierAccess {
  const tokenKey = loadOrCreateTokenKey(dataDir);
  const auditKey = loadOrCreateAuditKey(dataDir);
  const revocations = new TokenRevocations(knex);
  const tokens: TokenGate = { publicKey: tokenKey.publicKey, isRevoked: (tokenId) => revocations.isRevoked(tokenId) };
  return {
    tokenKey,
    revocations,
    tokens,
    auditKey,
    auditLog: new AuditLog(knex, auditKey),
    admit: async (request, certificate) => {
      const principal = await authenticateRequest(request, certificate, tokens, permissionOfMethod(request.method));
      const agentId = agentIdParam(request);
      if (principal.kind === 'token' && agentId !== undefined) {
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

/** The only tenant a request may see, or undefined when it sees all (a client certificate). */
export function visibleTenant(principal: Principal | undefined): string | undefined {
  return principal?.kind === 'token' ? principal.tenant : undefined;
}

/**
 * Appends every admin request that changes something (not `GET`) to the audit log before its reply
 * leaves: who (certificate subject or token subject, role and tenant; a token's tenant also as
 * `details.tenant`), what (method and route), on which agent or policy, and the status it got. A reply is not sent unless its record is stored.
 */
export function auditAdminActions(service: KeylimeService, audit: AuditLog, log: Logger): void {
  const audited = new WeakSet<FastifyRequest>();
  service.app.addHook('onSend', async (request, reply, payload) => {
    const principal = principalOf(request);
    // Once per request: the error reply of a failed append passes through here again.
    if (principal === undefined || request.method === 'GET' || request.method === 'HEAD' || audited.has(request)) return payload;
    audited.add(request);
    const agentId = agentIdParam(request) ?? null;
    const route = (request.routeOptions.url ?? request.url).replace(/^\/v\d+(\.\d+)?\//, '/');
    try {
      await audit.append({
        stream: agentId ?? FLEET_STREAM,
        at: new Date().toISOString(),
        actor: principalName(principal),
        action: `${request.method} ${route}`,
        agentId,
        // A token's tenant as a field of its own, so that the dashboard shows a policy's changes only to that tenant's viewers.
        details: { params: { ...(request.params as Record<string, string>) }, status: reply.statusCode, ...(principal.kind === 'token' ? { tenant: principal.tenant } : {}) },
      });
    } catch (error) {
      log.error({ err: error, route }, 'admin action not audited');
      throw error;
    }
    return payload;
  });
}

function isLivenessRoute(request: FastifyRequest): boolean {
  return (request.routeOptions.url ?? '').includes('/liveness/');
}

function agentIdParam(request: FastifyRequest): string | undefined {
  const params = request.params as Record<string, unknown> | undefined;
  const id = params?.['agent_id'];
  return typeof id === 'string' ? id : undefined;
}
