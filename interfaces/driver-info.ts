import { InvalidParameterValue, MissingParameterValue } from './errors.js';
import type { DriverInfo } from './node.js';

/**
 * Pure helpers for a driver's `validate`: they read `driver_info` fields, never touch the network,
 * and throw the typed errors the interface contract promises. Field names in messages are prefixed
 * with `driver_info.` so an operator knows where to look.
 */

/** Builds a driver's `getProperties()` result from its two maps. */
export function mergeProperties(
  required: Readonly<Record<string, string>>,
  optional: Readonly<Record<string, string>>,
): Record<string, string> {
  return { ...required, ...optional };
}

/**
 * Throws `MissingParameterValue` listing every key of `required` that is absent, `null` or an empty
 * string in `driverInfo` — all of them at once, in the map's order.
 */
export function checkRequiredProperties(driverInfo: DriverInfo, required: Readonly<Record<string, string>>): void {
  const missing = Object.keys(required).filter((field) => {
    const value = driverInfo[field];
    return value === undefined || value === null || value === '';
  });
  if (missing.length > 0) {
    throw new MissingParameterValue(missing);
  }
}

/** Reads an optional string field; absent or `null` gives `undefined`. */
export function readOptionalString(driverInfo: DriverInfo, field: string): string | undefined {
  const value = driverInfo[field];
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value !== 'string') {
    throw new InvalidParameterValue(`driver_info.${field}`, `must be a string, got ${typeof value}`);
  }
  return value;
}

/**
 * Reads an optional integer field within `[min, max]`. Accepts a number or a decimal string (Ironic
 * stores `driver_info` values as strings as often as not); absent or `null` gives `undefined`.
 */
export function readOptionalInteger(driverInfo: DriverInfo, field: string, min: number, max: number): number | undefined {
  const value = driverInfo[field];
  if (value === undefined || value === null) {
    return undefined;
  }
  const parsed = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof parsed !== 'number' || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new InvalidParameterValue(`driver_info.${field}`, `must be an integer from ${min} to ${max}`);
  }
  return parsed;
}

/** Reads an optional field that must be one of `choices`. */
export function readOptionalChoice<T extends string>(
  driverInfo: DriverInfo,
  field: string,
  choices: readonly T[],
): T | undefined {
  const value = readOptionalString(driverInfo, field);
  if (value === undefined) {
    return undefined;
  }
  const choice = choices.find((candidate) => candidate === value);
  if (choice === undefined) {
    throw new InvalidParameterValue(`driver_info.${field}`, `must be one of ${choices.join(', ')}, got "${value}"`);
  }
  return choice;
}
