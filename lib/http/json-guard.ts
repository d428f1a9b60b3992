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

/**
 * Checks a parsed JSON value before anything transforms it: nesting at most `maxDepth` levels and no
 * prototype key at any level. Iterative (an explicit stack), so a hostile depth cannot overflow the
 * call stack, and linear in the size of the value.
 *
 * @throws RequestValidationError naming the location (`body.auth_tag.constructor: key not allowed`).
 */
export function checkJsonValue(value: unknown, location: RequestLocation, maxDepth = MAX_JSON_DEPTH): void {
  if (typeof value === 'object' && value !== null && GUARDED_BODIES.has(value) && maxDepth >= MAX_JSON_DEPTH) {
    return;
  }
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: location, depth: 0 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (item.value === null || typeof item.value !== 'object') {
      continue;
    }
    const depth = item.depth + 1;
    if (depth > maxDepth) {
      throw new RequestValidationError(location, `nested deeper than ${maxDepth} levels`);
    }
    if (Array.isArray(item.value)) {
      for (let i = item.value.length - 1; i >= 0; i -= 1) {
        stack.push({ value: item.value[i] as unknown, path: item.path, depth });
      }
      continue;
    }
    for (const key of Object.keys(item.value)) {
      const path = `${item.path}.${key}`;
      if (PROTOTYPE_KEYS.has(key)) {
        throw new RequestValidationError(path, 'key not allowed');
      }
      stack.push({ value: (item.value as Record<string, unknown>)[key], path, depth });
    }
  }
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
