import { createHmac } from 'node:crypto';
import { bytesEqual } from '../bytes/bytes-equal.js';

/**
 * The registrar activation tag (keylime-protocol §1.4): lowercase hex of
 * HMAC-SHA384(key = UTF-8 of `keyText`, message = UTF-8 of `agentId`), 96 characters. `keyText` is
 * the BASE64 TEXT of the activated credential (the registrar's stored `key`), not the raw credential
 * — Keylime and the Rust agent both use the text as the HMAC key.
 */
export function computeAuthTag(keyText: string, agentId: string): string {
  return createHmac('sha384', Buffer.from(keyText, 'utf8')).update(Buffer.from(agentId, 'utf8')).digest('hex');
}

/**
 * True when `authTag` (hex, either case) is the tag for `keyText` and `agentId`. Compares the decoded
 * bytes in constant time after a length check; anything that is not 96 hex digits is simply false.
 */
export function checkAuthTag(keyText: string, agentId: string, authTag: string): boolean {
  if (!/^[0-9a-fA-F]{96}$/.test(authTag)) {
    return false;
  }
  const expected = createHmac('sha384', Buffer.from(keyText, 'utf8')).update(Buffer.from(agentId, 'utf8')).digest();
  const given = Buffer.from(authTag, 'hex');
  return bytesEqual(given, expected);
}
