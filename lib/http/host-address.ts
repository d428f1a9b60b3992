import { isIP } from 'node:net';
import { ValidateBy, type ValidationOptions } from 'class-validator';

/** The characters a host address may hold at all: no brackets, zone ids (`%eth0`), ports or paths. */
const HOST_CHARACTERS = /^[A-Za-z0-9._:-]{1,253}$/;
/**
 * One label of a host name: letters, digits, `_` and inner hyphens, at most 63 (RFC 1123 §2.1, plus the
 * `_` that container and NetBIOS names carry and the URL parser takes).
 */
const LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/;

/** The message every field checked by `IsHostAddress` gives. */
export const HOST_ADDRESS_MESSAGE = 'must be an IP address or a host name';

/**
 * True when `value` is an address an agent can be reached at through `https://<address>:<port>` as it
 * is written: an IPv4 address, a bare IPv6 address, or a host name. A name the URL parser would read as
 * something else is refused: one ending in a number is taken as IPv4 (`1.0x7f` is 1.0.0.127, WHATWG
 * URL "ends in a number"), so it must be a dotted-decimal IPv4 address itself.
 */
export function isHostAddress(value: string): boolean {
  if (!HOST_CHARACTERS.test(value)) return false;
  if (isIP(value) !== 0) return true;
  // A fully qualified name may end in its root's dot (`agent.example.`), as DNS writes it.
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  // No colon is left here (LABEL has none), so this is the URL httpsServiceUrl builds.
  if (!name.split('.').every((label) => LABEL.test(label))) return false;
  const url = `https://${value}:1`;
  return URL.canParse(url) && new URL(url).hostname === value.toLowerCase();
}

/** A string `isHostAddress` accepts; the field is named by the validation shell (400). */
export function IsHostAddress(validationOptions?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isHostAddress',
      validator: {
        validate: (value: unknown) => typeof value === 'string' && isHostAddress(value),
        defaultMessage: () => HOST_ADDRESS_MESSAGE,
      },
    },
    validationOptions,
  );
}
