/**
 * Deepest nesting of objects and arrays a JSON text may have. Real Keylime documents are at most
 * about 6 levels deep (a runtime policy's `digests` map of lists inside `data` inside `meta`).
 */
export const MAX_JSON_DEPTH = 32;

/**
 * Characters of a policy text (runtime policy, refstate, `tpm_policy`, IMA keyring) per JSON value it
 * may hold. A Keylime runtime policy spends two values per file (its list and one digest) on a path
 * and 40 to 128 hex digits: 25 or more characters a value with sha1 and one-letter paths, about 56 in
 * a distribution's policy (300,000 files in 31 MiB). Text of 16 characters a value costs JSON.parse
 * about what a real policy of the same length costs (31 MiB of padded `{}`: 3.2 s and 155 MB of heap;
 * the real policy 2.7 s and 109 MB), where unpadded `{},` (3 characters a value) cost 30 s and 700 MB.
 */
export const POLICY_CHARACTERS_PER_VALUE = 16;
/** Values any policy text may hold whatever its length: a small policy's fixed sections are dense. */
export const MIN_POLICY_JSON_VALUES = 4096;

/** The JSON values a policy text of `length` characters may hold (`POLICY_CHARACTERS_PER_VALUE`, at least `MIN_POLICY_JSON_VALUES`). */
export function policyJsonValueBound(length: number): number {
  return Math.max(MIN_POLICY_JSON_VALUES, Math.ceil(length / POLICY_CHARACTERS_PER_VALUE));
}

/** Characters `jsonTextExcess` stops at: a string's start, a container's start or end, a separator. */
const VALUE_MARKS = /["[\]{},]/g;

/**
 * Why a JSON text may not be parsed — `holds more than N JSON values` (array elements, object members'
 * values, the top value; keys not counted) or `nested deeper than D levels` — or undefined, found before
 * JSON.parse builds any value: each value is an allocation, and 32 MiB of `{},` alone took 8.5 s to
 * parse. One pass over the text, skipping strings with `indexOf` and ending at the first value past a
 * bound (or the first mark past what that many values can have), so a hostile text costs at most
 * `5 × maxValues` steps. Exact for JSON; on text that is not JSON the counts are some numbers and
 * JSON.parse refuses the text next. Each caller turns the reason into its own typed error.
 */
export function jsonTextExcess(text: string, maxValues: number, maxDepth = MAX_JSON_DEPTH): string | undefined {
  // The top value, one per `,` (each separates two values of one container), one per container with
  // a first value (what follows its `[` or `{` is not its closer).
  let values = 1;
  let depth = 0;
  // JSON of V values has at most 5V marks (2V strings, keys included; V - 1 commas; V openers and
  // V closers): more is text that is not JSON (`[][]…`, `""…`, `]]…`), refused as soon as seen.
  let marksLeft = MARKS_PER_VALUE * maxValues;
  const marks = new RegExp(VALUE_MARKS);
  // `test`, not `exec`: every mark is one character, so it ends just before `lastIndex`, and no match
  // array is built per mark (every agent reply of every pull round passes here).
  while (marks.test(text)) {
    marksLeft -= 1;
    if (marksLeft < 0) return tooMany(maxValues);
    const at = marks.lastIndex - 1;
    const mark = text.charCodeAt(at);
    if (mark === QUOTE) {
      marks.lastIndex = endOfString(text, at + 1);
      continue;
    }
    if (mark === CLOSE_ARRAY || mark === CLOSE_OBJECT) {
      depth -= 1;
      continue;
    }
    if (mark !== COMMA) {
      depth += 1;
      if (depth > maxDepth) return `nested deeper than ${maxDepth} levels`;
      if (closesRightAway(text, at + 1)) continue;
    }
    values += 1;
    if (values > maxValues) return tooMany(maxValues);
  }
  return undefined;
}

function tooMany(maxValues: number): string {
  return `holds more than ${maxValues} JSON values`;
}

const MARKS_PER_VALUE = 5;
const QUOTE = 0x22;
const COMMA = 0x2c;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;
const BACKSLASH = 0x5c;

/** The index after the `"` closing a string whose content starts at `from` (the text's end if none). */
function endOfString(text: string, from: number): number {
  for (let at = text.indexOf('"', from); at >= 0; at = text.indexOf('"', at + 1)) {
    let backslashes = 0;
    while (at - backslashes - 1 >= from && text.charCodeAt(at - backslashes - 1) === BACKSLASH) backslashes += 1;
    if (backslashes % 2 === 0) return at + 1;
  }
  return text.length;
}

/** Whether the container opened just before `from` is empty: its next character but JSON whitespace is `]` or `}`. */
function closesRightAway(text: string, from: number): boolean {
  CLOSER_AFTER_WHITESPACE.lastIndex = from;
  return CLOSER_AFTER_WHITESPACE.test(text);
}

/** JSON whitespace, then a closer; sticky (matched at `lastIndex` only, which each use sets first). */
const CLOSER_AFTER_WHITESPACE = /[ \t\n\r]*[\]}]/y;
