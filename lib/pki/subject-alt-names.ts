import { isIP } from 'node:net';
import { PkiError } from './pki-error.js';

/** One subjectAltName entry in node-forge's shape: type 2 = dNSName, type 7 = iPAddress (RFC 5280 §4.2.1.6). */
export type ForgeAltName = { type: 2; value: string } | { type: 7; ip: string };

/** The names every server certificate carries so that a local client can reach it without configuration. */
export const DEFAULT_SERVER_SANS: readonly string[] = ['localhost', '127.0.0.1', '::1'];

// RFC 1123 host name, optionally with a leading wildcard label; 253 characters at most.
const DNS_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const DNS_NAME = new RegExp(`^(?:\\*\\.)?${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);

/**
 * Classifies each name as an IP address (v4 or v6) or a DNS name, drops duplicates and keeps the
 * order. Throws `PkiError` for anything that is neither (an empty string, a URL, a name with spaces).
 */
export function toAltNames(names: readonly string[]): ForgeAltName[] {
  const seen = new Set<string>();
  const altNames: ForgeAltName[] = [];
  for (const raw of names) {
    const name = raw.trim();
    const key = name.toLowerCase();
    if (seen.has(key)) {
      continue;
    }
    seen.add(key);
    if (isIP(name) !== 0) {
      altNames.push({ type: 7, ip: name });
    } else if (name.length <= 253 && DNS_NAME.test(name)) {
      altNames.push({ type: 2, value: name });
    } else {
      throw new PkiError(`subject alternative name ${JSON.stringify(raw)} is neither an IP address nor a DNS name`);
    }
  }
  return altNames;
}
