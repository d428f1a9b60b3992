import { InvalidParameterValue } from '../../interfaces/errors.js';
import { TENANT_EK_CHECK_MODES } from '../../lib/tenant/ek-certificate-check.js';
import type { KeylimeAttestationOptions } from './keylime-attestation.js';

type NumericOption = 'staleAfterSeconds' | 'fetchTimeoutMs' | 'maxDocumentBytes' | 'requestTimeoutMs';

/**
 * Each numeric option, the largest value accepted (the HTTP client's own timeout ceiling is one hour),
 * and whether it must be whole: the HTTP client and `AbortSignal.timeout` refuse a fractional
 * millisecond count at the first request, long after the driver was built.
 */
const BOUNDS: ReadonlyArray<readonly [NumericOption, number, 'integer' | 'number']> = [
  ['staleAfterSeconds', 86_400, 'number'],
  ['fetchTimeoutMs', 3_600_000, 'integer'],
  ['maxDocumentBytes', 1024 ** 3, 'integer'],
  ['requestTimeoutMs', 3_600_000, 'integer'],
];

/**
 * Refuses a numeric driver option that is not a finite number above 0 and within its bound (a whole
 * one where the option counts milliseconds or bytes), and an `ekCheck` that is not one of the modes.
 * A NaN staleness bound compares false with every age, so every PASS, however old, would count as
 * fresh; an `ekCheck` typo (`"required"`) must not quietly weaken the EK certificate check.
 *
 * @throws InvalidParameterValue naming `keylime driver options.<option>`.
 */
export function checkDriverOptionBounds(options: KeylimeAttestationOptions): void {
  for (const [name, max, kind] of BOUNDS) {
    const value: unknown = options[name];
    if (value === undefined) {
      continue;
    }
    if (kind === 'integer' && (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max)) {
      throw new InvalidParameterValue(`keylime driver options.${name}`, `must be an integer from 1 to ${max}, got ${String(value)}`);
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
      throw new InvalidParameterValue(`keylime driver options.${name}`, `must be a number above 0 and at most ${max}, got ${String(value)}`);
    }
  }
  const ekCheck: unknown = options.ekCheck;
  if (ekCheck !== undefined && !(TENANT_EK_CHECK_MODES as readonly unknown[]).includes(ekCheck)) {
    throw new InvalidParameterValue('keylime driver options.ekCheck', `must be one of ${TENANT_EK_CHECK_MODES.join(', ')}, got ${JSON.stringify(ekCheck)}`);
  }
}
