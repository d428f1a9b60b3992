import { isIP, isIPv4 } from 'node:net';

/** The characters an agent address may hold at all (no brackets, zone ids, ports or paths). */
const HOST_CHARACTERS = /^[A-Za-z0-9.:-]{1,253}$/;
/** One DNS label (RFC 1123 §2.1): letters, digits and inner hyphens, at most 63. */
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * True when `value` is an agent address the driver can put in `https://<address>:<port>`: an IPv4
 * address, a bare IPv6 address, or a DNS host name. A host name whose last label is all digits is
 * read as IPv4 by the URL parser (WHATWG URL "ends in a number"), so it must be one.
 */
export function isAgentHost(value: string): boolean {
  if (!HOST_CHARACTERS.test(value)) return false;
  if (isIP(value) !== 0) return true;
  const labels = value.split('.');
  if (!labels.every((label) => LABEL.test(label))) return false;
  return !/^\d+$/.test(labels[labels.length - 1] as string) || isIPv4(value);
}
