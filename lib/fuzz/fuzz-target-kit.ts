import { IronlimeError } from '../../interfaces/errors.js';

/**
 * One fuzz target: a parser (or DTO) that takes untrusted input, its seeds, and `run`, which feeds it
 * one input the way a service does. `run` returning or throwing a typed error (`IronlimeError`, or the
 * few typed classes its callers handle) is fine; anything else is a finding.
 */
export interface FuzzTarget {
  readonly name: string;
  readonly description: string;
  readonly kind: 'bytes' | 'text';
  /** Tokens that mean something in the format, inserted by the text mutator. */
  readonly tokens?: readonly string[];
  seeds(): readonly (Uint8Array | string)[];
  run(input: Uint8Array | string): void;
}

export const bytesOf = (input: Uint8Array | string): Uint8Array => (typeof input === 'string' ? Buffer.from(input, 'utf8') : input);
export const textOf = (input: Uint8Array | string): string => (typeof input === 'string' ? input : Buffer.from(input).toString('utf8'));

export const JSON_TOKENS = ['{', '}', '[', ']', '"', ':', ',', 'null', 'true', '-1', '1e999', '"__proto__"', '"constructor"', '"prototype"', '\\u0000', '"\\ud800"', '[[[[[[[[', '{"a":'];

/** Errors a target may throw: the project's typed errors. */
export function isTypedFuzzError(error: unknown): boolean {
  return error instanceof IronlimeError;
}
