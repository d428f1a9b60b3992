/** Roles of a bearer token, weakest first. Each role may do what the ones before it may. */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/**
 * What a request does, and the weakest role allowed to do it: `read` (list, status, history,
 * dashboard), `operate` (add, stop, reactivate, update policies), `delete` (delete agents and
 * policies: destructive, admin only).
 */
export type Permission = 'read' | 'operate' | 'delete';

const MINIMUM_ROLE: Readonly<Record<Permission, Role>> = { read: 'viewer', operate: 'operator', delete: 'admin' };

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export function roleAllows(role: Role, permission: Permission): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(MINIMUM_ROLE[permission]);
}

/**
 * Who made a request, once authenticated: an mTLS client certificate (full access) or a token, with
 * its id (`jti`) and expiry (`exp`, seconds) so that a change can check again, in its transaction,
 * that it was neither revoked nor expired meanwhile.
 */
export type Principal =
  | { readonly kind: 'certificate'; readonly subject: string }
  | { readonly kind: 'token'; readonly subject: string; readonly role: Role; readonly tenant: string; readonly tokenId: string; readonly expiresAt: number };

/** True when the principal may act on an agent of `tenant`: certificates see every tenant. */
export function principalSeesTenant(principal: Principal, tenant: string): boolean {
  return principal.kind === 'certificate' || principal.tenant === tenant;
}

export function principalAllows(principal: Principal, permission: Permission): boolean {
  return principal.kind === 'certificate' || roleAllows(principal.role, permission);
}

/** How the audit log and the service log name who did something. */
export function principalName(principal: Principal): string {
  return principal.kind === 'certificate' ? `cert:${principal.subject}` : `token:${principal.subject} (${principal.role}@${principal.tenant})`;
}
