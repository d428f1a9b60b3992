/**
 * Canonical JSON (the JSON Canonicalization Scheme, RFC 8785) for the values we hash and sign:
 * object keys sorted by UTF-16 code units at every level (§3.2.3), no white space, strings and
 * numbers as ECMAScript's JSON.stringify writes them (which is what §3.2.2 prescribes). Members whose
 * value is undefined are left out, as JSON.stringify leaves them out of what goes on the wire. The same
 * value always gives the same text: the audit log's records and exports, and the KBS protocol's
 * runtime-data hash (guest-components hashes it with `serde_json_canonicalizer`, so both sides agree).
 *
 * Throws `TypeError` for what JSON cannot carry (non-finite numbers, bigint, functions, undefined).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') {
    return JSON.stringify(value);
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      throw new TypeError(`canonical JSON: ${value} is not a finite number`);
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map(canonicalJson).join(',')}]`;
  }
  if (typeof value === 'object') {
    const record = value as Record<string, unknown>;
    // The default sort compares UTF-16 code units, as RFC 8785 §3.2.3 requires. One loop and one
    // string, not filter/map/join: every audit record is hashed over this text (docs/fleet.md, eighteenth pass).
    const keys = Object.keys(record);
    sortKeys(keys);
    let text = '';
    for (const key of keys) {
      const item = record[key];
      if (item === undefined) continue;
      text += `${text === '' ? '' : ','}${JSON.stringify(key)}:${canonicalJson(item)}`;
    }
    return `{${text}}`;
  }
  throw new TypeError(`canonical JSON: a ${typeof value} cannot be written`);
}

/**
 * Sorts `keys` (an object's own, so distinct) in place in the default sort's order. Up to
 * `INSERTION_SORT_MAX` keys by insertion, which allocates nothing (Array.prototype.sort copies into work
 * arrays: about 900 bytes a verdict record, docs/fleet.md twentieth pass) and does no work on keys
 * already in order (an audit record's body); `<` on strings compares UTF-16 code units as the default sort does.
 */
function sortKeys(keys: string[]): void {
  if (keys.length > INSERTION_SORT_MAX) {
    keys.sort();
    return;
  }
  for (let i = 1; i < keys.length; i += 1) {
    const key = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > key) {
      keys[j + 1] = keys[j] as string;
      j -= 1;
    }
    keys[j + 1] = key;
  }
}

/** Insertion sort's quadratic worst case stays small up to here; larger objects use the built-in sort. */
const INSERTION_SORT_MAX = 32;
