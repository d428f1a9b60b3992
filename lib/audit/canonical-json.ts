/**
 * Canonical JSON for hashing and signing: object keys sorted by UTF-16 code units at every level,
 * no white space, numbers and strings as JSON.stringify writes them (the shape of RFC 8785 for the
 * values an audit record holds: strings, finite numbers, booleans, null, arrays, plain objects).
 * The same value always gives the same bytes, which is what makes exports reproducible.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${value} is not a finite number`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const keys = Object.keys(value).filter((key) => (value as Record<string, unknown>)[key] !== undefined).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`).join(',')}}`;
  }
  throw new TypeError(`canonical JSON: a ${typeof value} cannot be written`);
}
