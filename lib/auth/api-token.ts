import { randomUUID, type KeyObject } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { IronlimeError } from '../../interfaces/errors.js';
import { isRole, type Principal, type Role } from './roles.js';

/** The issuer and audience every ironlime API token carries. */
export const TOKEN_ISSUER = 'ironlime-verifier';
export const TOKEN_AUDIENCE = 'ironlime-api';
/** The one signature algorithm accepted: anything else (`none`, HS256 with the public key, RS256…) is refused. */
export const TOKEN_ALGORITHM = 'ES256';
/** Clock skew tolerated on `exp`, `nbf` and `iat`. */
export const TOKEN_CLOCK_TOLERANCE_SECONDS = 30;
/** The longest lifetime `issueApiToken` grants. */
export const MAX_TOKEN_TTL_SECONDS = 366 * 24 * 3600;
/**
 * The one form of token id (`jti`) accepted: a UUID in lower case, as `issueApiToken` makes it and as
 * `DELETE /tokens/{jti}` stores a revocation. Revocations are looked up by exact id, so a token whose id
 * had any other spelling could never be revoked.
 */
const TOKEN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/**
 * The one spelling of a token accepted: three unpadded base64url parts (RFC 7515 §7.1, base64url without padding as §2 defines it).
 * jose decodes the signature part forgivingly (it skips whitespace and takes `=` padding), so the same
 * signed token could be sent with a line feed or spaces inside its signature: the dashboard then put
 * that text in its `Set-Cookie` header (a line feed made the login a 500).
 */
const COMPACT_TOKEN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** A bearer token was refused: missing, malformed, expired, badly signed, or of the wrong kind. */
export class TokenRefused extends IronlimeError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ERR_TOKEN_REFUSED', message, options);
  }
}

export interface TokenRequest {
  readonly subject: string;
  readonly role: Role;
  readonly tenant: string;
  readonly ttlSeconds: number;
}

/** Mints a signed API token (JWT, ES256) for `role` on `tenant`. */
export async function issueApiToken(request: TokenRequest, privateKey: KeyObject, now: Date = new Date()): Promise<string> {
  if (!Number.isInteger(request.ttlSeconds) || request.ttlSeconds < 1 || request.ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
    throw new TokenRefused(`ttl must be from 1 s to ${MAX_TOKEN_TTL_SECONDS} s`);
  }
  const issuedAt = Math.floor(now.getTime() / 1000);
  return new SignJWT({ role: request.role, tenant: request.tenant })
    .setProtectedHeader({ alg: TOKEN_ALGORITHM, typ: 'JWT' })
    .setIssuer(TOKEN_ISSUER)
    .setAudience(TOKEN_AUDIENCE)
    .setSubject(request.subject)
    .setJti(randomUUID())
    .setIssuedAt(issuedAt)
    .setNotBefore(issuedAt)
    .setExpirationTime(issuedAt + request.ttlSeconds)
    .sign(privateKey);
}

/** What `verifyApiToken` checks beyond the token itself. */
export interface TokenCheck {
  /** The time the token is judged at (default: now). */
  readonly now?: Date;
  /** Whether the token of this `jti` was revoked (`TokenRevocations`); without it, no revocation is looked up. */
  readonly isRevoked?: (tokenId: string) => Promise<boolean>;
}

/**
 * Checks a bearer token with jose: ES256 only, signature by our key, issuer, audience, `exp`/`nbf`/
 * `iat` within the skew, a token id (`jti`, a lower-case UUID: the only form a revocation can name), a known role and a tenant, and, given `isRevoked`, that
 * the token was not revoked. Every refusal is a TokenRefused whose message says which check failed
 * (the caller answers 401 without it).
 */
export async function verifyApiToken(token: string, publicKey: KeyObject, check: TokenCheck = {}): Promise<Principal & { kind: 'token' }> {
  if (!COMPACT_TOKEN.test(token)) throw new TokenRefused('token refused: malformed');
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, publicKey, {
      algorithms: [TOKEN_ALGORITHM],
      issuer: TOKEN_ISSUER,
      audience: TOKEN_AUDIENCE,
      clockTolerance: TOKEN_CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['exp', 'iat', 'sub', 'jti'],
      currentDate: check.now ?? new Date(),
    }));
  } catch (cause) {
    throw new TokenRefused(`token refused: ${describeJoseError(cause)}`, { cause });
  }
  const { sub, role, tenant, jti, exp } = payload;
  if (!isRole(role)) throw new TokenRefused('token refused: no valid role claim');
  if (typeof tenant !== 'string' || tenant === '') throw new TokenRefused('token refused: no tenant claim');
  if (typeof jti !== 'string' || jti === '') throw new TokenRefused('token refused: no token id claim');
  if (!TOKEN_ID.test(jti)) throw new TokenRefused('token refused: token id is not a lower-case UUID');
  if (typeof exp !== 'number') throw new TokenRefused('token refused: no expiry claim');
  // A revocation that cannot be looked up (database down) throws: the token is not admitted.
  if (check.isRevoked !== undefined && (await check.isRevoked(jti))) throw new TokenRefused('token refused: revoked');
  return { kind: 'token', subject: String(sub), role, tenant, tokenId: jti, expiresAt: exp };
}

/**
 * Refuses, at `now` (the clock its service judges tokens on: `TokenGate.now`), a token whose expiry
 * (`expiresAt`, the `exp` claim) is past by more than the skew, exactly as `verifyApiToken` would: a
 * change whose body arrived after its token expired.
 * @throws TokenRefused (401)
 */
export function refuseExpiredToken(expiresAt: number, now: Date): void {
  if (Math.floor(now.getTime() / 1000) - TOKEN_CLOCK_TOLERANCE_SECONDS >= expiresAt) throw new TokenRefused('token refused: expired');
}

function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (error instanceof errors.JWTClaimValidationFailed) return `claim ${error.claim} ${error.reason.replaceAll('_', ' ')}`;
  if (error instanceof errors.JOSEError) return error.code;
  return 'malformed';
}
