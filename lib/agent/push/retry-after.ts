/**
 * A `Retry-After` header in seconds from `now` (RFC 9110 §10.2.3): either delay-seconds (`1*DIGIT`)
 * or an HTTP-date (a date already past is a wait of 0). Undefined for a missing, empty or malformed
 * value, so the caller falls back to its own back-off instead of reading it as "retry now".
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  const text = value?.trim();
  if (text === undefined || text === '') return undefined;
  if (/^[0-9]+$/.test(text)) return Number(text);
  // HTTP-date: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") or the two obsolete forms; each names a weekday.
  if (!/^[A-Za-z]{3}/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, (at - now) / 1000) : undefined;
}
