import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { RequestValidationError } from './http-errors.js';
import { checkJsonValue } from './json-guard.js';

/** A DTO class: decorated with class-validator rules, constructible without arguments. */
export type DtoClass<T extends object> = new () => T;

/** Where a value came from; used as the first part of every validation message. */
export type RequestLocation = 'params' | 'query' | 'body' | 'results';

/** Messages named per failed field; more would only lengthen the status line. */
const MAX_REPORTED = 5;

/**
 * Turns `plain` into an instance of `dto` and validates it: every rule must hold, and unknown
 * properties are rejected (`whitelist` + `forbidNonWhitelisted`) — except in `results`, a remote
 * service's reply, where they are dropped so that a newer peer's extra fields do not break us. Path parameters and query values are
 * strings on the wire, so for those locations class-transformer converts them to the declared property
 * types first; bodies are JSON and are taken as they are (a number is never accepted for a string).
 * Prototype keys and excessive nesting are refused before class-transformer runs (`json-guard.ts`; a
 * body's number of values, before it is parsed).
 * Throws `RequestValidationError` naming each failed field, e.g. `body.quote: must be a base64 string`.
 */
export function validateDto<T extends object>(dto: DtoClass<T>, plain: unknown, location: RequestLocation): T {
  if (plain === null || typeof plain !== 'object' || Array.isArray(plain)) {
    throw new RequestValidationError(location, 'must be a JSON object');
  }
  checkJsonValue(plain, location);
  const instance = plainToInstance(dto, plain, { enableImplicitConversion: location === 'params' || location === 'query' });
  const errors = validateSync(instance, {
    whitelist: true,
    forbidNonWhitelisted: location !== 'results',
    forbidUnknownValues: true,
    validationError: { target: false, value: false },
  });
  const dropped = location === 'results' ? [] : droppedKeys(plain, instance, location);
  if (errors.length > 0 || dropped.length > 0) {
    const messages = [...dropped, ...flatten(errors, location, MAX_REPORTED)];
    const first = messages[0] ?? { path: location, message: 'is invalid' };
    const detail = messages
      .slice(0, MAX_REPORTED)
      .map((m, i) => (i === 0 ? m.message : `${m.path}: ${m.message}`))
      .join('; ');
    throw new RequestValidationError(first.path, detail);
  }
  return instance;
}

/**
 * Top-level keys class-transformer skipped without a word because the instance inherits them
 * (`toString`, `hasOwnProperty`, … from Object.prototype): the whitelist never sees them, so they
 * would pass as if absent although unknown keys are refused.
 */
function droppedKeys(plain: object, instance: object, location: RequestLocation): { path: string; message: string }[] {
  return Object.keys(plain)
    .filter((key) => !Object.hasOwn(instance, key) && key in instance)
    .map((key) => ({ path: `${location}.${key}`, message: 'should not exist' }));
}

/** Rejects any value for a location whose route declared no DTO (absent, `{}` and, for bodies, `""` pass). */
export function requireEmpty(plain: unknown, location: RequestLocation): void {
  if (plain === undefined || plain === null || plain === '') {
    return;
  }
  if (typeof plain === 'object' && !Array.isArray(plain) && Object.keys(plain).length === 0) {
    return;
  }
  throw new RequestValidationError(location, 'not expected on this route');
}

/**
 * The first `max` messages of `errors`, depth first (a field's own rules, then its children's, then the
 * next field). Iterative and stopping at `max`: a body of 40,000 bad array elements overflowed the call
 * stack when each level's messages were spread into its parent's (a 500 instead of the 400).
 */
function flatten(errors: readonly ValidationError[], parent: string, max: number): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const pending: { error: ValidationError; parent: string }[] = [];
  const pushAll = (children: readonly ValidationError[], at: string): void => {
    for (let i = children.length - 1; i >= 0; i -= 1) pending.push({ error: children[i] as ValidationError, parent: at });
  };
  pushAll(errors, parent);
  for (let item = pending.pop(); item !== undefined && out.length < max; item = pending.pop()) {
    const { error } = item;
    const path = /^\d+$/.test(error.property) ? `${item.parent}[${error.property}]` : `${item.parent}.${error.property}`;
    for (const [rule, message] of Object.entries(error.constraints ?? {})) {
      out.push({ path, message: rule === 'whitelistValidation' ? 'should not exist' : withoutPropertyName(message, error.property) });
    }
    pushAll(error.children ?? [], path);
  }
  return out;
}

/** class-validator's built-in messages start with the property name ("port must be an integer"). */
function withoutPropertyName(message: string, property: string): string {
  return message.startsWith(`${property} `) ? message.slice(property.length + 1) : message;
}
