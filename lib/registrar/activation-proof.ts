import { createHash } from 'node:crypto';
import { bytesEqual } from '../bytes/bytes-equal.js';
import { checkAuthTag } from '../tpm/auth-tag.js';

/**
 * What a stored activation key (a TPM credential, or an `id-secret` host's registration nonce) becomes
 * once its proof was accepted. Neither base64 nor hex holds ':', so a spent key cannot be mistaken for
 * a credential or a nonce.
 */
const SPENT_PREFIX = 'spent:';

/**
 * How a proof (an `auth_tag`, or an `id-secret` host's proof) relates to the stored activation key:
 * - `proof`: it answers the outstanding challenge (spec §1.4);
 * - `repeat`: it is the proof already accepted for this challenge, sent again (the Rust agent retries a
 *   PUT whose reply it did not get; our client sends a PUT once more when its kept-alive connection was
 *   closed under it, the first one possibly carried out); it proves nothing new;
 * - `mismatch`: anything else, including any proof for a spent key other than the accepted one.
 */
export type ProofJudgement = 'proof' | 'repeat' | 'mismatch';

/** An `auth_tag`: hex of an HMAC-SHA384, either case. */
const AUTH_TAG = /^[0-9a-fA-F]{96}$/;

/** An `id-secret` host's proof: lower-case hex of an HMAC-SHA256 (`verifyHostRegistrationProof` takes no other). */
const HOST_PROOF = /^[0-9a-f]{64}$/;

/** Judges `authTag` against the stored key in constant time; never uses a spent or empty key as an HMAC key. */
export function judgeAuthTag(storedKey: string, agentId: string, authTag: string): ProofJudgement {
  return judgeProof(storedKey, authTag, AUTH_TAG, (key) => checkAuthTag(key, agentId, authTag));
}

/**
 * Judges an `id-secret` host's `proof` against the stored nonce; `answers(nonce)` checks the proof for
 * it (`verifyHostRegistrationProof`). A spent or empty nonce is never offered to it.
 */
export function judgeHostProof(storedKey: string, proof: string, answers: (nonce: string) => boolean): ProofJudgement {
  return judgeProof(storedKey, proof, HOST_PROOF, answers);
}

function judgeProof(storedKey: string, proof: string, shape: RegExp, answers: (key: string) => boolean): ProofJudgement {
  if (storedKey.startsWith(SPENT_PREFIX)) {
    const accepted = Buffer.from(storedKey.slice(SPENT_PREFIX.length), 'hex');
    return shape.test(proof) && bytesEqual(proofDigest(proof), accepted) ? 'repeat' : 'mismatch';
  }
  if (storedKey === '') return 'mismatch';
  return answers(storedKey) ? 'proof' : 'mismatch';
}

/**
 * The key to store once `proof` was accepted: the credential or nonce is no longer kept, only a digest
 * that recognises the same proof sent again.
 */
export function spentActivationKey(proof: string): string {
  return SPENT_PREFIX + Buffer.from(proofDigest(proof)).toString('hex');
}

function proofDigest(proof: string): Uint8Array {
  return createHash('sha256').update(proof.toLowerCase(), 'ascii').digest();
}
