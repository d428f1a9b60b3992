/**
 * PostgreSQL cannot store every JavaScript string: `text` and `jsonb` refuse U+0000 (SQLSTATE 22P05,
 * "\u0000 cannot be converted to text") and `jsonb` refuses a lone UTF-16 surrogate ("\ud800" with no
 * partner). Evidence is attacker-controlled and failure contexts quote it — GRUB's kernel command line
 * in a measured-boot log ends in a NUL — so a verdict whose text holds one would be refused, and a
 * refused verdict is a lost one. These functions make any string storable by ESCAPING those code units
 * as the six visible characters `\u0000` / `\udXXX` (never dropping them), so an operator still sees
 * that the evidence held one. Strings without them are returned unchanged (the common case costs one
 * regex test).
 */

/**
 * NUL or a lone surrogate. With the `u` flag a valid surrogate pair is one code point above U+FFFF,
 * so only unpaired surrogates fall in the class.
 */
const UNSTORABLE = /[\u0000\ud800-\udfff]/u;
const UNSTORABLE_ALL = /[\u0000\ud800-\udfff]/gu;

/** `text` with NUL and lone surrogates escaped as `\uXXXX` (visible backslash, lower-case hex). */
export function storableText(text: string): string {
  if (!UNSTORABLE.test(text)) {
    return text;
  }
  return text.replace(UNSTORABLE_ALL, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `storableText`, or null kept as null. */
export function storableNullableText(text: string | null): string | null {
  return text === null ? null : storableText(text);
}

/**
 * What `JSON.stringify` writes for a NUL or a lone surrogate: `\u0000`, `\ud800`–`\udfff` (it writes
 * nothing else that way: a valid pair is written as itself). Also matches an escaped backslash
 * followed by such text (`\\u0000`, a string holding those six characters), which only sends that
 * value down the slow path.
 */
const ESCAPED_UNSTORABLE = /\\u(?:0000|d[89a-f])/;

/**
 * JSON text of `value` with every string (keys too) made storable first: what a `jsonb` column accepts.
 * The common value has no NUL or lone surrogate anywhere: its plain `JSON.stringify` is already that
 * text, and is taken when it holds none of their escapes (a third of the time of the replacer below,
 * which is called for every key and value: about 16 against 6 µs for a push attestation's row).
 */
export function storableJson(value: unknown): string {
  const plain = JSON.stringify(value);
  if (!ESCAPED_UNSTORABLE.test(plain)) return plain;
  return JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item === 'string') {
      return storableText(item);
    }
    if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
      const entries = Object.entries(item as Record<string, unknown>);
      if (entries.some(([key]) => UNSTORABLE.test(key))) {
        return Object.fromEntries(entries.map(([key, inner]) => [storableText(key), inner]));
      }
    }
    return item;
  });
}
