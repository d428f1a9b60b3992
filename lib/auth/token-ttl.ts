import { InvalidParameterValue } from '../../interfaces/errors.js';

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses a lifetime such as `900`, `900s`, `15m`, `8h` or `30d` into seconds. */
export function parseTokenTtl(text: string): number {
  const match = /^(\d{1,9})([smhd]?)$/.exec(text.trim());
  if (match === null) throw new InvalidParameterValue('--ttl', `not a duration (e.g. 900, 15m, 8h, 30d): ${text}`);
  return Number(match[1]) * (UNIT_SECONDS[match[2] === '' ? 's' : (match[2] as string)] as number);
}
