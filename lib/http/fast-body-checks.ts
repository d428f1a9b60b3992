import { isCanonicalBase64 } from './validators.js';

/**
 * Building blocks of a body fast path: a function in front of a DTO that returns the parsed body
 * unchanged only when the DTO certainly accepts it, and leaves everything else to `validateDto` for
 * the refusal and its message. Each check here is a SUFFICIENT condition for the class-validator rule
 * it stands for, never a looser one: lengths are counted in UTF-16 units, which class-validator's
 * `MaxLength` never counts as more (it counts a surrogate pair or a presentation sequence as one).
 */

/** A parsed JSON object (not an array, not null). */
export type PlainObject = Record<string, unknown>;

/** True for an object that is not an array: what `IsObject` accepts of a JSON value. */
export function isPlainObject(value: unknown): value is PlainObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * True for an object whose own keys are all in `allowed` (the DTO's properties: `forbidNonWhitelisted`
 * refuses any other) and that has a defined value for every `required` key.
 */
export function hasOnlyKeys(value: unknown, allowed: ReadonlySet<string>, required: readonly string[]): value is PlainObject {
  if (!isPlainObject(value)) {
    return false;
  }
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) {
      return false;
    }
  }
  for (const key of required) {
    if (value[key] === undefined) {
      return false;
    }
  }
  return true;
}

/** `IsString` + `MaxLength(max)`: a string of at most `max` UTF-16 units. */
export function isStringUpTo(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length <= max;
}

/** `IsBase64String({maxLength: max, allowEmpty})`: canonical standard base64 of at most `max` characters. */
export function isBase64UpTo(value: unknown, max: number, allowEmpty: boolean): value is string {
  return isStringUpTo(value, max) && (value.length === 0 ? allowEmpty : isCanonicalBase64(value));
}

/** `IsOptional()` then `check`: absent or null (the DTO skips every rule for those), or passing `check`. */
export function isAbsentOr(value: unknown, check: (value: unknown) => boolean): boolean {
  return value === undefined || value === null || check(value);
}
