import type { FastifyRequest } from 'fastify';
import type { Knex } from 'knex';
import type { AuditLog } from '../audit/audit-log.js';
import type { AuditEvent } from '../audit/audit-record.js';
import { refuseExpiredToken } from '../auth/api-token.js';
import { principalOf } from '../auth/request-principal.js';
import { isKeylimeAgentId } from '../http/validators.js';
import { principalName } from '../auth/roles.js';
import type { TokenRevocations } from '../auth/token-revocations.js';
import { storableText } from '../db/storable-text.js';
import { FLEET_STREAM } from './reserved-agent-ids.js';

/** Appends the audit record of a request's change inside the change's own transaction. */
export type ChangeRecord = (trx: Knex.Transaction) => Promise<void>;

/** Where each request that may change something (not `GET`) is recorded and its token's revocation read, set as it arrives. */
const recorders = new WeakMap<FastifyRequest, ChangeRecorder>();
/** Requests whose record was appended in their change's transaction. */
const recordedWithChange = new WeakSet<FastifyRequest>();

/** Where a request's change is recorded, and how its token is checked again at the change. */
export interface ChangeRecorder {
  readonly audit: AuditLog;
  readonly revocations: TokenRevocations;
  /** The time the token's expiry is judged at (`TokenGate.now`). */
  readonly now: () => Date;
}

/** Makes `changeRecord` of `request` append to `recorder.audit` and check its token against `recorder.revocations` and `recorder.now` (`auditAdminActions`). */
export function recordChangesOf(request: FastifyRequest, recorder: ChangeRecorder): void {
  recorders.set(request, recorder);
}

/**
 * The record of `request`'s change, answered with `status` once committed, to append inside the
 * change's transaction: the change and its record commit together, or neither does (a failed append
 * rolls the change back and the request is answered 500). A bearer token is checked again here, in the
 * change's transaction: one revoked or expired since the headers were admitted rolls the change back (401).
 * @throws (when run) TokenRefused for a token revoked or expired meanwhile; an Error for an authenticated request
 *   `auditAdminActions` does not audit: a change never goes unrecorded.
 */
export function changeRecord(request: FastifyRequest, status: number): ChangeRecord {
  return async (trx) => {
    // Admin routes are open (nobody authenticated) only in-process (`inProcessForTests`): nobody to record, as `auditAdminActions`.
    const principal = principalOf(request);
    if (principal === undefined) return;
    const recorder = recorders.get(request);
    if (recorder === undefined) throw new Error(`${request.method} ${request.url} is not an audited admin request`);
    if (principal.kind === 'token') {
      await recorder.revocations.refuseRevokedIn(trx, principal.tokenId);
      // After the revocations' lock, which a revocation may have held a while.
      refuseExpiredToken(principal.expiresAt, recorder.now());
    }
    await recorder.audit.appendIn(trx, adminAuditEvent(request, status));
    recordedWithChange.add(request);
  };
}

/** True when `request`'s record was appended in its change's transaction (it committed if the reply is a success). */
export function recordedInTransaction(request: FastifyRequest): boolean {
  return recordedWithChange.has(request);
}

/**
 * An admin request's audit record: who (certificate subject or token subject, role and tenant; a
 * token's tenant also as `details.tenant`), what (method and route), on which agent (its stream) or
 * else in the fleet stream, and the status it got.
 * @throws an Error for a request nobody was authenticated for
 */
export function adminAuditEvent(request: FastifyRequest, status: number): AuditEvent {
  const principal = principalOf(request);
  if (principal === undefined) throw new Error(`${request.method} ${request.url} has no authenticated principal`);
  // Only a valid agent id names a stream: a path's id is not yet validated when a refused request is
  // recorded, and one PostgreSQL cannot store (a NUL) or longer than a stream made the record fail. Its
  // request goes to the fleet stream, its id kept (JSON-escaped) in `details.params`.
  const param = agentIdParam(request);
  const agentId = param !== undefined && isKeylimeAgentId(param) ? param : null;
  return {
    stream: agentId ?? FLEET_STREAM,
    at: new Date().toISOString(),
    actor: principalName(principal),
    action: `${request.method} ${auditedRoute(request)}`,
    agentId,
    // A token's tenant as a field of its own: the dashboard shows a node's or a policy's actions by it.
    details: { params: storableParams(request.params), status, ...(principal.kind === 'token' ? { tenant: storableText(principal.tenant) } : {}) },
  };
}

/**
 * The path's parameters with each value storable (`storableText`): a NUL or a lone surrogate, which a
 * refused request's path may hold (`/mbpolicies/a%00b`), JSON-escaped in `details` is text no `jsonb`
 * accepts, and the dashboard reads `details` as `jsonb`: one such record failed every node's timeline.
 */
function storableParams(params: unknown): Record<string, string> {
  return Object.fromEntries(Object.entries((params ?? {}) as Record<string, string>).map(([name, value]) => [name, storableText(value)]));
}

/** The route without its API version: `/agents/:agent_id`. */
export function auditedRoute(request: FastifyRequest): string {
  return (request.routeOptions.url ?? request.url).replace(/^\/v\d+(\.\d+)?\//, '/');
}

export function agentIdParam(request: FastifyRequest): string | undefined {
  const params = request.params as Record<string, unknown> | undefined;
  const id = params?.['agent_id'];
  return typeof id === 'string' ? id : undefined;
}
