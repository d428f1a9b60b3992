import { KBS_SESSION_COOKIE } from '../broker/kbs-wire.js';

/** RFC 6265 §4.1.1: a cookie name is a token, its value cookie-octets, optionally quoted. Both bounded. */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$/;
const COOKIE_VALUE = /^(?:[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]{0,4096}|"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]{0,4096}")$/;
/** More cookies than a broker and a load balancer in front of it set are dropped, not kept. */
const MAX_COOKIES = 16;

/**
 * The cookies one broker set during an attestation, sent back with the session cookie on the session's
 * later requests. guest-components' client keeps every cookie (reqwest's cookie store); a broker with
 * several replicas behind a load balancer that pins clients by a cookie of its own (`SERVERID`, `AWSALB`)
 * needs that cookie back, or `/attest` reaches a replica that never saw the session. Each `set-cookie`
 * line's first `name=value` is taken (RFC 6265 §5.2); one with `Max-Age` ≤ 0 or an `Expires` in the past
 * removes the cookie; a name or value outside RFC 6265's grammar is ignored. The session cookie itself
 * is read strictly elsewhere (`cookieOf`) and is not kept here.
 */
export class BrokerCookies {
  private readonly cookies = new Map<string, string>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Takes the cookies of a reply's `set-cookie` header. */
  take(header: string | string[] | undefined): void {
    for (const line of Array.isArray(header) ? header : header === undefined ? [] : [header]) {
      this.takeLine(line);
    }
  }

  /** The `cookie` header for the session: the kept cookies, then `kbs-session-id=<session>`. */
  headerWith(session: string): string {
    return [...[...this.cookies].map(([name, value]) => `${name}=${value}`), `${KBS_SESSION_COOKIE}=${session}`].join('; ');
  }

  private takeLine(line: string): void {
    const [pair = '', ...attributes] = line.split(';');
    const equals = pair.indexOf('=');
    if (equals < 0) return;
    const name = pair.slice(0, equals).trim();
    const value = pair.slice(equals + 1).trim();
    if (name === KBS_SESSION_COOKIE || !COOKIE_NAME.test(name) || !COOKIE_VALUE.test(value)) return;
    if (this.removes(attributes)) {
      this.cookies.delete(name);
    } else if (this.cookies.has(name) || this.cookies.size < MAX_COOKIES) {
      this.cookies.set(name, value);
    }
  }

  private removes(attributes: readonly string[]): boolean {
    for (const attribute of attributes) {
      const equals = attribute.indexOf('=');
      const key = (equals < 0 ? attribute : attribute.slice(0, equals)).trim().toLowerCase();
      const value = equals < 0 ? '' : attribute.slice(equals + 1).trim();
      if (key === 'max-age' && /^-?\d{1,12}$/.test(value) && Number(value) <= 0) return true;
      if (key === 'expires' && Date.parse(value) <= this.now()) return true;
    }
    return false;
  }
}
