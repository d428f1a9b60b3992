import { InvalidParameterValue } from '../../interfaces/errors.js';
import { policyJsonValueBound } from '../bytes/json-text-bound.js';
import { parseCountedJson } from '../bytes/parse-counted-json.js';

/**
 * Keylime's `tpm_policy`: a JSON object `{"<pcr>": ["<hex>", …], "mask": "0x…"}` (spec §4.1;
 * keylime/tpm/tpm_abstract.py `TPM_Utilities.readPolicy`). Keys are decimal PCR numbers, values are the
 * accepted digests (a single string is accepted as a one-element list), compared lowercase.
 */
export interface TpmPolicy {
  /** Accepted lowercase hex values per PCR; a PCR absent here is not checked. */
  readonly pcrs: ReadonlyMap<number, readonly string[]>;
  /** The PCR mask to request from the agent (`mask`), as a number (bit i = PCR i). */
  readonly mask: number;
}

const HEX = /^[0-9a-f]*$/;

/** What `parseTpmPolicy` returns: only its own instances are taken as already parsed (a look-alike is parsed, and refused). */
class ParsedTpmPolicy implements TpmPolicy {
  constructor(
    readonly pcrs: ReadonlyMap<number, readonly string[]>,
    readonly mask: number,
  ) {
    Object.freeze(this);
  }
}

/**
 * Parses a `tpm_policy` given as JSON text (as stored and sent by the tenant) or as an already-parsed
 * object. PCR numbers must be 0–23; PCR 16 (data binding) and 10 (IMA) are refused in the policy as
 * Keylime's tenant refuses them. `mask` is taken from the policy when present and otherwise computed.
 * A policy this function returned is handed back as it is (the verifier parses an agent's policy once,
 * not every round).
 * @throws InvalidParameterValue
 */
export function parseTpmPolicy(input: string | Readonly<Record<string, unknown>> | TpmPolicy, field = 'tpm_policy'): TpmPolicy {
  if (input instanceof ParsedTpmPolicy) {
    return input;
  }
  let raw: unknown = input;
  if (typeof input === 'string' && input.trim() === '') {
    raw = {};
  } else if (typeof input === 'string') {
    // Counted before it is parsed: a tpm_policy is a string member of a request, where the body's value bound does not reach.
    raw = parseCountedJson(input, policyJsonValueBound(input.length), {
      excess: (reason) => new InvalidParameterValue(field, reason),
      notJson: (cause) => new InvalidParameterValue(field, 'is not valid JSON', { cause }),
    });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InvalidParameterValue(field, 'must be a JSON object');
  }
  const pcrs = new Map<number, readonly string[]>();
  let computedMask = 0;
  let mask: number | undefined;
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'mask') {
      mask = parseMask(value, `${field}.mask`);
      continue;
    }
    const pcr = parsePcrKey(key, `${field}.${key}`);
    const values = typeof value === 'string' ? [value] : value;
    if (!Array.isArray(values) || !values.every((item): item is string => typeof item === 'string')) {
      throw new InvalidParameterValue(`${field}.${key}`, 'must be a hex string or a list of hex strings');
    }
    const lowered = values.map((item) => item.toLowerCase());
    if (!lowered.every((item) => HEX.test(item) && item.length % 2 === 0)) {
      throw new InvalidParameterValue(`${field}.${key}`, 'values must be hex digests');
    }
    pcrs.set(pcr, Object.freeze(lowered));
    computedMask |= 1 << pcr;
  }
  return new ParsedTpmPolicy(pcrs, mask ?? computedMask);
}

function parsePcrKey(key: string, field: string): number {
  if (!/^\d{1,2}$/.test(key) || Number(key) > 23) {
    throw new InvalidParameterValue(field, 'PCR numbers must be decimal 0-23');
  }
  const pcr = Number(key);
  if (pcr === 16) {
    throw new InvalidParameterValue(field, 'PCR 16 binds the agent key and cannot be in tpm_policy');
  }
  if (pcr === 10) {
    throw new InvalidParameterValue(field, 'PCR 10 is checked by IMA replay and cannot be in tpm_policy');
  }
  return pcr;
}

function parseMask(value: unknown, field: string): number {
  if (typeof value !== 'string' || !/^(0x)?[0-9a-fA-F]{1,6}$/.test(value)) {
    throw new InvalidParameterValue(field, 'must be a hex string such as "0x408400" (PCRs 0-23)');
  }
  return Number.parseInt(value.replace(/^0x/, ''), 16);
}

/** The mask in Keylime's wire form (`hex(mask)`), e.g. `0x408400`. */
export function formatPcrMask(mask: number): string {
  return `0x${mask.toString(16)}`;
}
