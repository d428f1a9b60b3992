import { RequestValidationError } from './http-errors.js';
import type { RequestLocation } from './dto-validation.js';

/**
 * Deepest nesting of objects and arrays a request body may have. Real Keylime bodies are at most
 * about 6 levels deep (a runtime policy's `digests` map of lists inside `data` inside `meta`).
 */
export const MAX_JSON_DEPTH = 32;

/**
 * Values a public route's body may hold (`checkJsonText`) unless the route sets its own bound: its
 * DTO's fields are mostly strings, so real bodies hold tens to a few hundred. Each value costs a
 * JSON.parse allocation and then a class-transformer and class-validator visit: 700,000 empty objects
 * in a 2 MiB push body stalled the event loop 10.6 s, and 32 MiB of them ran the heap out of memory.
 */
export const DEFAULT_MAX_JSON_VALUES = 512;
/**
 * The same for an admin route, refused before its body is read without a client certificate: an
 * operator's lists (a resource's readers, a node's groups) may be long, and the bound only keeps a
 * mistake from stalling the service.
 */
export const ADMIN_MAX_JSON_VALUES = 100_000;

/** Characters `checkJsonText` stops at: a string's start, a container's start or end, a separator. */
const VALUE_MARKS = /["[\]{},]/g;

/**
 * Keys that reach an object's prototype through class-transformer, lodash-style merges or a plain
 * `target[key] = …`: `{"constructor": {}}` made class-transformer throw a TypeError (issue 11 item 4).
 * No Keylime field is named so, so they are refused anywhere in a body.
 */
const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Bodies `parseJsonBody` has already checked with the default depth: `validateDto` would otherwise walk
 * every request body a second time. Weak, so a body is forgotten with its request.
 */
const GUARDED_BODIES = new WeakSet<object>();

/** An object or array `checkJsonValue` has yet to look into; its path is made only for a refusal. */
interface Pending {
  readonly value: object;
  readonly parent: Pending | undefined;
  /** The key under which `parent` holds it; undefined for an array element (the path names its array). */
  readonly key: string | undefined;
  readonly depth: number;
}

/**
 * Checks a parsed JSON value before anything transforms it: nesting at most `maxDepth` levels and no
 * prototype key at any level. Iterative (an explicit stack), so a hostile depth cannot overflow the
 * call stack, and linear in the size of the value; only objects and arrays are pushed, and a location
 * string is made only for a refusal, so a body of 16 million numbers costs one pass and no allocation.
 *
 * @throws RequestValidationError naming the location (`body.auth_tag.constructor: key not allowed`).
 */
export function checkJsonValue(value: unknown, location: RequestLocation, maxDepth = MAX_JSON_DEPTH): void {
  if (typeof value !== 'object' || value === null) {
    return;
  }
  if (GUARDED_BODIES.has(value) && maxDepth >= MAX_JSON_DEPTH) {
    return;
  }
  const stack: Pending[] = [{ value, parent: undefined, key: undefined, depth: 1 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (item.depth > maxDepth) {
      throw new RequestValidationError(location, `nested deeper than ${maxDepth} levels`);
    }
    const depth = item.depth + 1;
    if (Array.isArray(item.value)) {
      for (let i = item.value.length - 1; i >= 0; i -= 1) {
        const element: unknown = item.value[i];
        if (typeof element === 'object' && element !== null) {
          stack.push({ value: element, parent: item, key: undefined, depth });
        }
      }
      continue;
    }
    const holder = item.value as Record<string, unknown>;
    for (const key of Object.keys(holder)) {
      if (PROTOTYPE_KEYS.has(key)) {
        throw new RequestValidationError(`${pathOf(item, location)}.${key}`, 'key not allowed');
      }
      const member = holder[key];
      if (typeof member === 'object' && member !== null) {
        stack.push({ value: member, parent: item, key, depth });
      }
    }
  }
}

/** `body.a.b` for the object at `item` (array elements take their array's path). */
function pathOf(item: Pending, location: RequestLocation): string {
  const keys: string[] = [];
  for (let at: Pending | undefined = item; at !== undefined; at = at.parent) {
    if (at.key !== undefined) keys.push(at.key);
  }
  return [location, ...keys.reverse()].join('.');
}

/**
 * Refuses a body text holding more than `maxValues` JSON values (array elements, object members'
 * values, the top value; keys not counted) or nested deeper than `maxDepth`, before JSON.parse builds
 * any of them: parsing 32 MiB of `{},` alone took 8.5 s. One pass over the text, skipping strings with
 * `indexOf` and ending at the first value past a bound (or the first mark past what that many values
 * can have), so a hostile body costs at most `5 × maxValues` steps. Exact for JSON; on text that is not JSON the counts are some numbers and JSON.parse refuses
 * the text next.
 *
 * @throws RequestValidationError (`body: holds more than 512 JSON values`, `body: nested deeper than 32 levels`).
 */
export function checkJsonText(text: string, maxValues: number, maxDepth = MAX_JSON_DEPTH): void {
  // The top value, one per `,` (each separates two values of one container), one per container with
  // a first value (what follows its `[` or `{` is not its closer).
  let values = 1;
  let depth = 0;
  // JSON of V values has at most 5V marks (2V strings, keys included; V - 1 commas; V openers and
  // V closers): more is text that is not JSON (`[][]…`, `""…`, `]]…`), refused as soon as seen.
  let marksLeft = MARKS_PER_VALUE * maxValues;
  const marks = new RegExp(VALUE_MARKS);
  for (let match = marks.exec(text); match !== null; match = marks.exec(text)) {
    marksLeft -= 1;
    if (marksLeft < 0) {
      throw new RequestValidationError('body', `holds more than ${maxValues} JSON values`);
    }
    const at = match.index;
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
      if (depth > maxDepth) {
        throw new RequestValidationError('body', `nested deeper than ${maxDepth} levels`);
      }
      if (closesRightAway(text, at + 1)) continue;
    }
    values += 1;
    if (values > maxValues) {
      throw new RequestValidationError('body', `holds more than ${maxValues} JSON values`);
    }
  }
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

/**
 * `JSON.parse` of a request body, between `checkJsonText` (before: at most `maxValues` values and
 * `MAX_JSON_DEPTH` levels are built) and `checkJsonValue` (after: prototype keys).
 *
 * @throws RequestValidationError ("body: must be JSON" or the guard's refusal).
 */
export function parseJsonBody(text: string, maxValues = DEFAULT_MAX_JSON_VALUES): unknown {
  checkJsonText(text, maxValues);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new RequestValidationError('body', 'must be JSON', { cause });
  }
  checkJsonValue(value, 'body');
  if (typeof value === 'object' && value !== null) {
    GUARDED_BODIES.add(value);
  }
  return value;
}

/**
 * A request body's text as the services read it: an empty body is no body (undefined), whatever the
 * Content-Type — Keylime's Python tenant sends `Content-Type: application/json` with an empty body on
 * PUT …/reactivate and …/stop — and any other text is `parseJsonBody`'s.
 *
 * @throws RequestValidationError as `parseJsonBody`.
 */
export function parseRequestBody(text: string, maxValues = DEFAULT_MAX_JSON_VALUES): unknown {
  return text.length === 0 ? undefined : parseJsonBody(text, maxValues);
}
