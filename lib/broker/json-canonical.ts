/**
 * JSON Canonicalization Scheme (RFC 8785) for the values the KBS protocol hashes: objects with keys
 * sorted by UTF-16 code units, no whitespace, strings and numbers serialised as ECMAScript does (which
 * is what RFC 8785 §3.2.2 prescribes). guest-components hashes `runtime-data` this way
 * (`serde_json_canonicalizer`), so both sides reach the same report data.
 *
 * Throws `TypeError` for values JSON cannot carry (undefined, functions, non-finite numbers, bigint).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') {
    return JSON.stringify(value);
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      throw new TypeError('canonical JSON: non-finite number');
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  }
  if (typeof value === 'object') {
    const record = value as Record<string, unknown>;
    // Default sort compares UTF-16 code units, as RFC 8785 §3.2.3 requires.
    const keys = Object.keys(record).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(',')}}`;
  }
  throw new TypeError(`canonical JSON: cannot serialise a ${typeof value}`);
}
