import { Transform } from 'class-transformer';
import { ValidateBy, ValidateIf, type ValidationOptions } from 'class-validator';

/**
 * Reusable class-validator decorators for Keylime request fields. Their messages start with "must" so
 * that the shell can prefix the location: `body.quote: must be a base64 string`. Every check is linear
 * in the input and bounded by a maximum length, so hostile input cannot make it slow.
 */

export interface LengthOptions {
  /** Longest accepted string, in characters. */
  readonly maxLength?: number;
  /** Accept `""` (default false). */
  readonly allowEmpty?: boolean;
}

const DEFAULT_MAX_LENGTH = 16 * 1024 * 1024;

/** Standard-alphabet base64 with padding, canonical (it must re-encode to itself), as Keylime sends TPM structures. */
export function isCanonicalBase64(value: string): boolean {
  return value.length % 4 === 0 && Buffer.from(value, 'base64').toString('base64') === value;
}

/** A string that `isCanonicalBase64` accepts. */
export function IsBase64String(options: LengthOptions = {}, validationOptions?: ValidationOptions): PropertyDecorator {
  return stringRule('isBase64String', 'must be a base64 string', options, validationOptions, isCanonicalBase64);
}

const HEX = /^[0-9a-fA-F]*$/;

/** Hexadecimal digits only (no `0x`); `evenLength` (default true) requires whole bytes. */
export function IsHexString(
  options: LengthOptions & { readonly evenLength?: boolean } = {},
  validationOptions?: ValidationOptions,
): PropertyDecorator {
  const even = options.evenLength ?? true;
  return stringRule('isHexString', even ? 'must be a hex string of whole bytes' : 'must be a hex string', options, validationOptions, (value) =>
    HEX.test(value) && (!even || value.length % 2 === 0),
  );
}

/** Registrar column `agent_id` is String(80) (`models/registrar/registrar_agent.py`). */
export const AGENT_ID_MAX_LENGTH = 80;
// Keylime's `[\w.-]+` (spec §0.3), restricted to ASCII: Python's \w would also take any Unicode letter.
const AGENT_ID = /^[A-Za-z0-9_.-]+$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

// Matched by Keylime's `[\w.-]+` but unusable, so refused (issue 11 item 6): only dots ("." and ".."
// are path segments that every HTTP client normalises away, so such an agent could never be shown or
// deleted), and names that reach an object's prototype when used as a key.
const ONLY_DOTS = /^\.+$/;
const PROTOTYPE_NAMES: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** True when `value` is an agent id this project accepts (see `IsKeylimeAgentId`). */
export function isKeylimeAgentId(value: string): boolean {
  return (
    value.length <= AGENT_ID_MAX_LENGTH && AGENT_ID.test(value) && !ONLY_DOTS.test(value) && !PROTOTYPE_NAMES.has(value)
  );
}

/**
 * A Keylime agent id: `[A-Za-z0-9_.-]{1,80}` (Keylime `validators.valid_agent_id`, `[\w.-]+`, in
 * ASCII), except ids made only of dots and the names `__proto__`, `constructor`, `prototype`; with
 * `uuid: true` it must be a UUID.
 */
export function IsKeylimeAgentId(options: { readonly uuid?: boolean } = {}, validationOptions?: ValidationOptions): PropertyDecorator {
  if (options.uuid === true) {
    return stringRule('isKeylimeAgentId', 'must be a UUID', { maxLength: 36 }, validationOptions, (value) => UUID.test(value));
  }
  const characters = `must be an agent id of letters, digits, "_", "." and "-" (at most ${AGENT_ID_MAX_LENGTH})`;
  return ValidateBy(
    {
      name: 'isKeylimeAgentId',
      validator: {
        validate: (value: unknown): boolean => typeof value === 'string' && isKeylimeAgentId(value),
        defaultMessage: (args): string =>
          typeof args?.value === 'string' && args.value.length <= AGENT_ID_MAX_LENGTH && AGENT_ID.test(args.value)
            ? 'must not be only dots nor __proto__, constructor or prototype'
            : characters,
      },
    },
    validationOptions,
  );
}

/** Agent `MAX_NONCE_SIZE` (rust-keylime `quotes_handler.rs`). */
export const NONCE_MAX_LENGTH = 64;
const NONCE = /^[A-Za-z0-9]+$/;

/** A quote nonce: 1 to 64 ASCII letters and digits; its ASCII bytes become TPM2_Quote's qualifyingData. */
export function IsNonce(validationOptions?: ValidationOptions): PropertyDecorator {
  return stringRule('isNonce', `must be 1 to ${NONCE_MAX_LENGTH} letters and digits`, { maxLength: NONCE_MAX_LENGTH }, validationOptions, (value) =>
    NONCE.test(value),
  );
}

const PCR_MASK = /^(?:0[xX])?([0-9a-fA-F]{1,8})$/;
/** Keylime agents quote PCRs 0–23 only (spec §2, `mask`). */
const PCR_MASK_LIMIT = 0x1000000;

/** A PCR mask: hex, optionally `0x`-prefixed (`0x408400`), bit i = PCR i, PCRs 0–23 only. */
export function IsPcrMask(validationOptions?: ValidationOptions): PropertyDecorator {
  return stringRule('isPcrMask', 'must be a hex PCR mask (optional 0x) of PCRs 0-23', { maxLength: 10 }, validationOptions, (value) => {
    const digits = PCR_MASK.exec(value)?.[1];
    return digits !== undefined && Number.parseInt(digits, 16) < PCR_MASK_LIMIT;
  });
}

export interface PemOptions extends LengthOptions {
  /** Required block label, e.g. `CERTIFICATE`; any label when absent. */
  readonly label?: string;
  /** Accept several blocks (a chain); default false. */
  readonly multiple?: boolean;
}

const PEM_BLOCK = /^-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END \1-----\r?\n?/;

/** PEM text: one (or with `multiple`, one or more) well-formed blocks with base64 bodies and nothing else. */
export function IsPem(options: PemOptions = {}, validationOptions?: ValidationOptions): PropertyDecorator {
  const what = options.label === undefined ? 'PEM' : `PEM ${options.label}`;
  const message = options.multiple === true ? `must be one or more ${what} blocks` : `must be a ${what} block`;
  return stringRule('isPem', message, { maxLength: 256 * 1024, ...options }, validationOptions, (value) => {
    const labels = pemLabels(value);
    return (
      labels !== undefined &&
      labels.length > 0 &&
      (options.multiple === true || labels.length === 1) &&
      (options.label === undefined || labels.every((l) => l === options.label))
    );
  });
}

/** Labels of the PEM blocks `text` consists of (surrounding whitespace allowed), or undefined if it is not only PEM blocks. */
export function pemLabels(text: string): string[] | undefined {
  const labels: string[] = [];
  let rest = text.trim();
  while (rest.length > 0) {
    const match = PEM_BLOCK.exec(rest);
    const body = match?.[2]?.replace(/\r?\n/g, '');
    if (match === null || body === undefined || Buffer.from(body, 'base64').toString('base64') !== body) {
      return undefined;
    }
    labels.push(match[1] ?? '');
    rest = rest.slice(match[0].length).trimStart();
  }
  return labels;
}

function stringRule(
  name: string,
  message: string,
  options: LengthOptions,
  validationOptions: ValidationOptions | undefined,
  accept: (value: string) => boolean,
): PropertyDecorator {
  const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
  return ValidateBy(
    {
      name,
      validator: {
        validate: (value: unknown): boolean =>
          typeof value === 'string' &&
          value.length <= maxLength &&
          (value.length === 0 ? options.allowEmpty === true : accept(value)),
        defaultMessage: () => message,
      },
    },
    validationOptions,
  );
}

/** An `http://` URL (any case): no TLS, so no CA check and no client certificate. */
export function isPlainHttp(url: string): boolean {
  return url.toLowerCase().startsWith('http:');
}

/**
 * JSON null read as an absent field, for optional fields where a client sends null for "none" (Keylime's
 * tenants do: keylimectl `runtime_policy_name`, keylime_tenant `runtime_policy_key`). `IsOptional`
 * passes null on to code that tells absent by `=== undefined`, which then reads null as a value.
 */
export function NullAsAbsent(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) => (value === null ? undefined : value));
}

/**
 * `IsOptional` for an absent field only: a field sent as JSON null is validated, so the rules after this
 * refuse it (`IsOptional` passes null on, to code that reads it as a value where absence was meant).
 */
export function OptionalNotNull(): PropertyDecorator {
  return ValidateIf((_object: object, value: unknown) => value !== undefined);
}
