import { validateDto, type DtoClass, type RequestLocation } from './dto-validation.js';
import { checkJsonValue } from './json-guard.js';
import { isCanonicalBase64, isKeylimeAgentId } from './validators.js';

/**
 * Predicates for a fast path in front of a class-validator DTO (docs/http.md, "Validation"): each
 * answers true only when the DTO rule it stands for certainly accepts the value as it is, and false for
 * anything doubtful, which the caller then hands to `validateDto` for the refusal. So each is at most as
 * permissive as its rule: string lengths are counted in UTF-16 units (class-validator's `MaxLength`
 * counts a surrogate pair as one, never more), a null optional member is false (class-validator's
 * `IsOptional` would skip it), and an object's keys must all be expected.
 */

/** A JSON object: not null, not an array (a router's params object has no prototype, and is one). */
export type PlainObject = Readonly<Record<string, unknown>>;

export function isPlainObject(value: unknown): value is PlainObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A plain object whose keys are all in `allowed` and which has every `required` key (not undefined). */
export function hasOnlyKeys(value: unknown, allowed: ReadonlySet<string>, required: readonly string[]): value is PlainObject {
  if (!isPlainObject(value)) return false;
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) return false;
  }
  return required.every((key) => (value as PlainObject)[key] !== undefined);
}

/** Absent, or present and passing `check` (null is not absent here: it goes to class-validator). */
export function isAbsentOr(value: unknown, check: (value: unknown) => boolean): boolean {
  return value === undefined || check(value);
}

/** `IsString` + `MaxLength(max)`. */
export function isStringOfAtMost(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length <= max;
}

/** `IsString` + `Matches(pattern)` (a pattern without the global flag, so `test` keeps no state). */
export function isStringMatching(value: unknown, pattern: RegExp): value is string {
  return typeof value === 'string' && pattern.test(value);
}

/** `IsBase64String({maxLength: max, allowEmpty})`: canonical standard base64 with padding, empty only when allowed. */
export function isBase64OfAtMost(value: unknown, max: number, allowEmpty = false): value is string {
  return typeof value === 'string' && value.length <= max && (value.length === 0 ? allowEmpty : isCanonicalBase64(value));
}

/** `IsKeylimeAgentId()`. */
export function isAgentIdString(value: unknown): value is string {
  return typeof value === 'string' && isKeylimeAgentId(value);
}

/** `IsIn(allowed)` for strings. */
export function isOneOf(value: unknown, allowed: ReadonlySet<string>): value is string {
  return typeof value === 'string' && allowed.has(value);
}

/**
 * `validateDto`'s first step passes: no prototype key at any level and nesting within bounds
 * (`checkJsonValue`; free for a body `parseJsonBody` already checked).
 */
export function passesJsonGuard(value: unknown): boolean {
  try {
    checkJsonValue(value, 'body');
    return true;
  } catch {
    return false;
  }
}

/**
 * A DTO with a fast path in front of it: `fast` answers the value for the shapes it is sure `dto`
 * accepts (built from the predicates above) and undefined for anything else.
 */
export interface FastDto<T extends object> {
  readonly dto: DtoClass<T>;
  readonly fast: (plain: unknown) => T | undefined;
}

/** The fast path's answer, else `validateDto`'s: the DTO accepts the rest or produces the refusal. */
export function validateFast<T extends object>(spec: FastDto<T>, plain: unknown, location: RequestLocation): T {
  return spec.fast(plain) ?? validateDto(spec.dto, plain, location);
}
