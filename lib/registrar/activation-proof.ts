import { createHash } from 'node:crypto';
import { bytesEqual } from '../bytes/bytes-equal.js';
import { checkAuthTag } from '../tpm/auth-tag.js';

/**
 * What a stored TPM activation key becomes once its `auth_tag` was accepted. Base64 never holds ':',
 * so a spent key cannot be mistaken for a credential.
 */
const SPENT_PREFIX = 'spent:';

/**
 * How an `auth_tag` relates to the stored activation key:
 * - `proof`: it answers the outstanding challenge (spec §1.4);
 * - `repeat`: it is the tag already accepted for this challenge, sent again (the Rust agent retries a
 *   PUT whose reply it did not get); it proves nothing new;
 * - `mismatch`: anything else, including any tag for a spent key other than the accepted one.
 */
export type AuthTagJudgement = 'proof' | 'repeat' | 'mismatch';

/** Judges `authTag` against the stored key in constant time; never uses a spent or empty key as an HMAC key. */
export function judgeAuthTag(storedKey: string, agentId: string, authTag: string): AuthTagJudgement {
  if (storedKey.startsWith(SPENT_PREFIX)) {
    const accepted = Buffer.from(storedKey.slice(SPENT_PREFIX.length), 'hex');
    return /^[0-9a-fA-F]{96}$/.test(authTag) && bytesEqual(tagDigest(authTag), accepted) ? 'repeat' : 'mismatch';
  }
  if (storedKey === '') return 'mismatch';
  return checkAuthTag(storedKey, agentId, authTag) ? 'proof' : 'mismatch';
}

/**
 * The key to store once `authTag` was accepted: the credential is no longer kept, only a digest that
 * recognises the same tag sent again.
 */
export function spentActivationKey(authTag: string): string {
  return SPENT_PREFIX + Buffer.from(tagDigest(authTag)).toString('hex');
}

function tagDigest(authTag: string): Uint8Array {
  return createHash('sha256').update(authTag.toLowerCase(), 'ascii').digest();
}
