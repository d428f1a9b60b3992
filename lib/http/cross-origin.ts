import type { FastifyRequest } from 'fastify';

/**
 * True for a state-changing request a browser marks as sent by a page of another origin: its `Origin`
 * is not the service's own. The browser would attach its client certificate or cookie to it (CSRF);
 * Keylime's tenant and ironlime's clients send no `Origin`.
 */
export function isCrossOriginWrite(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  return origin !== undefined && request.method !== 'GET' && request.method !== 'HEAD' && !sameOrigin(origin, `${request.protocol}://${request.host}`);
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
