import { InvalidParameterValue } from '../../interfaces/errors.js';
import type { KeylimeAttestationOptions } from './keylime-attestation.js';

type NumericOption = 'staleAfterSeconds' | 'fetchTimeoutMs' | 'maxDocumentBytes' | 'requestTimeoutMs';

/** Each numeric option and the largest value accepted (the HTTP client's own timeout ceiling is one hour). */
const BOUNDS: ReadonlyArray<readonly [NumericOption, number]> = [
  ['staleAfterSeconds', 86_400],
  ['fetchTimeoutMs', 3_600_000],
  ['maxDocumentBytes', 1024 ** 3],
  ['requestTimeoutMs', 3_600_000],
];

/**
 * Refuses a numeric driver option that is not a finite number above 0 and within its bound. A NaN
 * staleness bound compares false with every age, so every PASS, however old, would count as fresh.
 *
 * @throws InvalidParameterValue naming `keylime driver options.<option>`.
 */
export function checkDriverOptionBounds(options: KeylimeAttestationOptions): void {
  for (const [name, max] of BOUNDS) {
    const value: unknown = options[name];
    if (value === undefined) {
      continue;
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
      throw new InvalidParameterValue(`keylime driver options.${name}`, `must be a number above 0 and at most ${max}, got ${String(value)}`);
    }
  }
}
