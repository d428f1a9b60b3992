import type { KeyObject } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { clientCertificateRefusal } from '../http/client-certificate-refusal.js';
import { ForbiddenError } from '../http/http-errors.js';
import { TokenRefused, verifyApiToken } from './api-token.js';
import { principalAllows, principalName, type Permission, type Principal } from './roles.js';

/**
 * The dashboard's login cookie: the bearer token itself, HttpOnly, Secure, SameSite=Strict. The
 * `__Host-` prefix makes a browser take it only from a secure origin of this host, with `Path=/` and
 * no `Domain` (RFC 6265bis §4.1.3.2): a plain-HTTP answer for the host (a network attacker) or a
 * sibling domain cannot set one, as they could `ironlime_token`, which is no longer read.
 */
export const TOKEN_COOKIE = '__Host-ironlime_token';
/** Longest Authorization header or cookie read: a token is well under 1 KiB. */
const MAX_TOKEN_LENGTH = 4096;

const principals = new WeakMap<FastifyRequest, Principal>();

/** How a service checks the bearer tokens it is shown: the key they are signed with, the revocations, and the clock. */
export interface TokenGate {
  readonly publicKey: KeyObject;
  isRevoked(tokenId: string): Promise<boolean>;
  /**
   * The time a token's `exp`, `nbf` and `iat` are judged at: the one clock every process sharing the
   * revocations judges on (the verifier's: the database's), so that none whose own clock is behind admits an expired token.
   */
  now(): Date;
}

/** `verifyApiToken` against `gate`: signature, claims at `gate.now()`, and not revoked. */
export function checkToken(token: string, gate: TokenGate): Promise<Principal & { kind: 'token' }> {
  return verifyApiToken(token, gate.publicKey, { isRevoked: (tokenId) => gate.isRevoked(tokenId), now: gate.now() });
}

/** The principal a request was admitted as (undefined before or without `authenticateRequest`). */
export function principalOf(request: FastifyRequest): Principal | undefined {
  return principals.get(request);
}

/**
 * Where a request's token is read: the admin API reads only `Authorization`; the dashboard its cookie
 * too. The cookie (`Path=/`, as `__Host-` requires) is sent with every request to the verifier's
 * origin, the API's included, which does not take it: a browser's cookie acts on dashboard pages only.
 */
export type TokenSource = 'header' | 'header-or-cookie';

/**
 * The bearer token of a request: `Authorization: Bearer …`, else (`header-or-cookie`) the dashboard
 * cookie. Two dashboard cookies are refused: another secure origin of the host (another port) could
 * set one to show its own token's fleet to the operator; the browser would send both.
 */
export function presentedToken(request: FastifyRequest, source: TokenSource): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string' && /^bearer /i.test(header)) return checkedLength(header.slice(7).trim());
  if (source === 'header') return undefined;
  const cookies = request.headers.cookie;
  if (typeof cookies !== 'string') return undefined;
  const values = cookies
    .split(';')
    .map((part) => part.trim().split('='))
    .filter(([name]) => name === TOKEN_COOKIE)
    .map(([, ...value]) => value.join('='));
  if (values.length > 1) throw new TokenRefused(`token refused: more than one ${TOKEN_COOKIE} cookie (clear this site's cookies and log in again)`);
  return values.length === 0 ? undefined : checkedLength(values[0] as string);
}

function checkedLength(token: string): string {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw new TokenRefused('token refused: malformed');
  return token;
}

/** `GET` and `HEAD` read, `DELETE` deletes (admin only), everything else operates. */
export function permissionOfMethod(method: string): Permission {
  if (method === 'GET' || method === 'HEAD') return 'read';
  return method === 'DELETE' ? 'delete' : 'operate';
}

/**
 * Admits a request as a principal: a client certificate verified by TLS (full access, as before
 * tokens), else a bearer token read from `source` and checked by `checkToken` (not revoked), whose
 * role must allow `permission`.
 * Remembers the principal for `principalOf`.
 *
 * @throws ForbiddenError (403) without either, or when the role is too low; TokenRefused (401) for a bad token.
 */
export async function authenticateRequest(
  request: FastifyRequest,
  certificate: PeerCertificate | undefined,
  tokens: TokenGate,
  permission: Permission,
  source: TokenSource,
): Promise<Principal> {
  let principal: Principal;
  if (certificate !== undefined) {
    principal = { kind: 'certificate', subject: certificateSubject(certificate) };
  } else {
    const token = presentedToken(request, source);
    if (token === undefined) throw clientCertificateRefusal(request);
    principal = await checkToken(token, tokens);
  }
  if (!principalAllows(principal, permission)) {
    throw new ForbiddenError(`${principalName(principal)} may not ${permission}`);
  }
  principals.set(request, principal);
  return principal;
}

/** Who a client certificate names: its subject's CN, else its SHA-256 fingerprint. */
export function certificateSubject(certificate: PeerCertificate): string {
  const cn = certificate.subject?.CN;
  return typeof cn === 'string' && cn !== '' ? cn : certificate.fingerprint256;
}
