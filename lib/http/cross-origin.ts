import type { FastifyRequest } from 'fastify';

/**
 * True for a state-changing request a browser marks as sent by a page of another origin: its
 * `Sec-Fetch-Site` is neither `same-origin` nor `none` (the user's own action, or a tool's: no page
 * sends it), or its `Origin` is not the service's own. The browser would attach its client
 * certificate or cookie to it (CSRF); Keylime's tenant and ironlime's clients send neither header.
 * A page served with `Referrer-Policy: no-referrer` (the dashboard's) makes Chromium send `Origin:
 * null` on its own forms: that is accepted only beside `Sec-Fetch-Site: same-origin`, which no page
 * of another origin can set.
 */
export function isCrossOriginWrite(request: FastifyRequest): boolean {
  if (request.method === 'GET' || request.method === 'HEAD') return false;
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = request.headers.origin;
  if (origin === undefined || (origin === 'null' && site === 'same-origin')) return false;
  return !sameOrigin(origin, `${request.protocol}://${request.host}`);
}

/**
 * Whether an `Origin` header names the service's own origin, compared as URL origins (host case and
 * a default port spelt out do not matter). An opaque `null` or unparsable origin is another site.
 */
function sameOrigin(origin: string, own: string): boolean {
  try {
    return new URL(origin).origin === new URL(own).origin;
  } catch {
    return false;
  }
}
