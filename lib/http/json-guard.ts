import { RequestValidationError } from './http-errors.js';
import type { RequestLocation } from './dto-validation.js';

/**
 * Deepest nesting of objects and arrays a request body may have. Real Keylime bodies are at most
 * about 6 levels deep (a runtime policy's `digests` map of lists inside `data` inside `meta`).
 */
export const MAX_JSON_DEPTH = 32;

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
 * `JSON.parse` of a request body followed by `checkJsonValue`. V8's JSON.parse is not recursive, so
 * any depth parses; the check then refuses what is too deep before a recursive consumer sees it.
 *
 * @throws RequestValidationError ("body: must be JSON" or the guard's refusal).
 */
export function parseJsonBody(text: string): unknown {
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
export function parseRequestBody(text: string): unknown {
  return text.length === 0 ? undefined : parseJsonBody(text);
}
