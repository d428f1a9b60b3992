import { ValidateBy } from 'class-validator';

/**
 * The type rules of a verifier's status reply (`GET /v2.x/agents/{id}`), shared by the client's
 * `VerifierAgentStatus` and the verdict's `VerifierStatusReply`, so the two never read one field differently.
 */

/**
 * One rule on a reply field: `accept` decides, and the refusal names what was expected and shows the
 * start of what came (`must be a boolean, got "false"`), so a log says which verifier sent what.
 */
export function Accepts(expected: string, accept: (value: unknown) => boolean): PropertyDecorator {
  return ValidateBy({
    name: 'verifierStatusField',
    validator: {
      validate: accept,
      defaultMessage: (args) => `must be ${expected}, got ${String(JSON.stringify(args?.value)).slice(0, 40)}`,
    },
  });
}

export const isText = (value: unknown): boolean => typeof value === 'string';
export const isBoolean = (value: unknown): boolean => typeof value === 'boolean';
export const isNonNegativeInteger = (value: unknown): boolean => typeof value === 'number' && Number.isInteger(value) && value >= 0;
export const isNonNegativeNumber = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value >= 0;
export const isPositiveNumber = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0;

/** Keylime's `attestation_period` text (`"2s"`, `"0.5s"`; API ≥ 2.5). */
const PERIOD = /^(\d{1,9}(?:\.\d{1,6})?)s$/;

/** `attestation_period` in seconds: a positive number, or Keylime's text form; undefined for anything else. */
export function periodSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return isPositiveNumber(value) ? value : undefined;
  }
  const match = typeof value === 'string' ? PERIOD.exec(value.trim()) : null;
  const seconds = match === null ? undefined : Number(match[1]);
  return seconds !== undefined && seconds > 0 ? seconds : undefined;
}
