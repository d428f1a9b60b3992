import { isAscii } from 'node:buffer';

/**
 * A request body's text, decoded as UTF-8. A body of ASCII only (every Keylime body in practice: JSON
 * with base64 and hex) decodes the same as Latin-1, which copies bytes where UTF-8 decoding checks
 * each one: `isAscii` (one SIMD pass) then a copy took half the time for a push evidence body of 55 KB.
 */
export function requestBodyText(body: string | Buffer): string {
  // Fastify's type allows a string; with `parseAs: 'buffer'` it hands a Buffer.
  if (typeof body === 'string') return body;
  return isAscii(body) ? body.toString('latin1') : body.toString('utf8');
}
