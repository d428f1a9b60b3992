import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { KbsError } from './kbs-errors.js';

const ID_BYTES = 16;
const TIME_BYTES = 6;
const MAC_BYTES = 16;
const COOKIE_BYTES = ID_BYTES + TIME_BYTES + MAC_BYTES;
/** A cookie issued this far in the future is refused (clocks of workers on one host agree). */
const FUTURE_SKEW_MS = 5_000;

/** A session cookie that opened: its id (the `broker_sessions` key once attested) and times. */
export interface OpenedSession {
  readonly id: string;
  /** Unix milliseconds of `/auth`. */
  readonly issuedAt: number;
  /** Unix milliseconds after which the session is over. */
  readonly expiresAt: number;
  /** The Challenge nonce of this session (base64 of 32 bytes), derived, never stored before attest. */
  readonly nonce: string;
}

/**
 * Stateless RCAR sessions: `/auth` writes nothing. The cookie is base64url of id(16 random bytes) ‖
 * issued-at(48-bit ms) ‖ HMAC-SHA256(key, "cookie" ‖ id ‖ issued-at) truncated to 16 bytes (51
 * characters, inside the client's and KBS's cookie grammar), and the session's nonce is
 * HMAC-SHA256(key, "nonce" ‖ id): unpredictable without the key, and the same in every worker that
 * holds it. The key is derived (HKDF-SHA256) from the broker's master key, so all workers and restarts
 * of one data folder agree and no new secret file exists. Single use of a nonce is not the cookie's job:
 * `/attest` claims the session id in the database (a primary key, shared by every worker) — see
 * `BrokerService.attest`.
 */
export class SessionCookies {
  private readonly key: Buffer;

  constructor(masterKey: Uint8Array, private readonly timeoutMs: number) {
    this.key = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'ironlime-broker kbs-session-cookie v1', 32));
  }

  /** A new session issued at `now`: the cookie value and the opened form. */
  issue(now: number): { readonly cookie: string; readonly session: OpenedSession } {
    const id = randomBytes(ID_BYTES);
    const time = Buffer.alloc(TIME_BYTES);
    time.writeUIntBE(now, 0, TIME_BYTES);
    const body = Buffer.concat([id, time]);
    const cookie = Buffer.concat([body, this.mac(body)]).toString('base64url');
    return { cookie, session: this.opened(id, now) };
  }

  /**
   * The session a cookie names, or why not: the MAC must verify (constant time), the issue time must
   * not be in the future and the session not expired at `now`.
   */
  open(cookie: string, now: number): { readonly ok: true; readonly session: OpenedSession } | { readonly ok: false; readonly reason: string } {
    const bytes = Buffer.from(cookie, 'base64url');
    if (bytes.length !== COOKIE_BYTES || bytes.toString('base64url') !== cookie) {
      return { ok: false, reason: 'the session cookie is malformed' };
    }
    const body = bytes.subarray(0, ID_BYTES + TIME_BYTES);
    if (!timingSafeEqual(this.mac(body), bytes.subarray(ID_BYTES + TIME_BYTES))) {
      return { ok: false, reason: 'the session cookie was not issued by this broker' };
    }
    const issuedAt = body.readUIntBE(ID_BYTES, TIME_BYTES);
    if (issuedAt > now + FUTURE_SKEW_MS) {
      return { ok: false, reason: 'the session cookie is from the future' };
    }
    const session = this.opened(body.subarray(0, ID_BYTES), issuedAt);
    if (session.expiresAt <= now) {
      return { ok: false, reason: 'the session has expired' };
    }
    return { ok: true, session };
  }

  private opened(id: Buffer, issuedAt: number): OpenedSession {
    // An HMAC-SHA256: 32 bytes, the KBS nonce size (kbs-types `NONCE_SIZE_BYTES`).
    const nonce = createHmac('sha256', this.key).update('nonce').update(id).digest('base64');
    return { id: id.toString('base64url'), issuedAt, expiresAt: issuedAt + this.timeoutMs, nonce };
  }

  private mac(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update('cookie').update(body).digest().subarray(0, MAC_BYTES);
  }
}

/** The session a cookie names at `now`, refused with `type` when there is none or it does not open. */
export function requireSession(cookies: SessionCookies, cookie: string | undefined, now: number, type: 'AttestationError' | 'TokenVerifierError'): OpenedSession {
  if (cookie === undefined) {
    throw new KbsError(type, 'no valid session: POST /auth first');
  }
  const opened = cookies.open(cookie, now);
  if (!opened.ok) {
    throw new KbsError(type, opened.reason);
  }
  return opened.session;
}
