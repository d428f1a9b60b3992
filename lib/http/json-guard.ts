import { RequestValidationError } from './http-errors.js';
import type { RequestLocation } from './dto-validation.js';
import { jsonTextExcess, MAX_JSON_DEPTH } from '../bytes/json-text-bound.js';
import { parseCountedJson } from '../bytes/parse-counted-json.js';

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
 * Refuses a body text holding more than `maxValues` JSON values or nested deeper than `maxDepth`,
 * before JSON.parse builds any of them (`jsonTextExcess`, lib/bytes/json-text-bound.ts: one pass,
 * at most `5 × maxValues` steps on a hostile body).
 *
 * @throws RequestValidationError (`body: holds more than 512 JSON values`, `body: nested deeper than 32 levels`).
 */
export function checkJsonText(text: string, maxValues: number, maxDepth = MAX_JSON_DEPTH): void {
  const excess = jsonTextExcess(text, maxValues, maxDepth);
  if (excess !== undefined) {
    throw new RequestValidationError('body', excess);
  }
}

/**
 * `JSON.parse` of a request body, between the value count (`parseCountedJson`, before: at most `maxValues` values and
 * `MAX_JSON_DEPTH` levels are built) and `checkJsonValue` (after: prototype keys).
 *
 * @throws RequestValidationError ("body: must be JSON" or the guard's refusal).
 */
export function parseJsonBody(text: string, maxValues = DEFAULT_MAX_JSON_VALUES): unknown {
  const value = parseCountedJson(text, maxValues, {
    excess: (reason) => new RequestValidationError('body', reason),
    notJson: (cause) => new RequestValidationError('body', 'must be JSON', { cause }),
  });
  checkJsonValue(value, 'body');
  rememberGuardedBody(value);
  return value;
}

/**
 * Records that `value` passed `checkJsonValue` with the default depth, so validation does not walk it
 * again: for a body `parseJsonBody` checked in another thread (off-thread-bodies.ts), whose copy is new here.
 */
export function rememberGuardedBody(value: unknown): void {
  if (typeof value === 'object' && value !== null) {
    GUARDED_BODIES.add(value);
  }
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
