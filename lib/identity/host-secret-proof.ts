import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { bytesEqual } from '../bytes/bytes-equal.js';

/** A host secret is 256 random bits. */
export const HOST_SECRET_BYTES = 32;

export function newHostSecret(): Buffer {
  return randomBytes(HOST_SECRET_BYTES);
}

/**
 * The key the registrar keeps for an `id-secret` host instead of the secret itself:
 * HMAC-SHA256(secret, "ironlime-id-secret-v1:" + host id hash). It cannot be turned back into the
 * secret, and it is bound to one host id, but like any shared key it is enough to answer a
 * challenge: whoever reads the registrar's database can impersonate the host (docs/identity.md).
 */
export function hostProofKey(secret: Uint8Array, hostIdHash: string): Buffer {
  return createHmac('sha256', secret).update(`ironlime-id-secret-v1:${hostIdHash}`).digest();
}

/** Whole bytes of hex, either case. */
const HEX = /^(?:[0-9a-fA-F]{2})+$/;

/**
 * Whether two hex proof keys are the same key, compared as bytes in constant time (`bytesEqual`). A
 * missing key, text that is not hex, or keys of different lengths are simply not the same; nothing
 * throws. (Hex that is not strictly checked would decode to fewer bytes, or none, and two different
 * malformed texts could then compare equal.)
 */
export function sameProofKey(a: string | null, b: string | null): boolean {
  if (a === null || b === null || !HEX.test(a) || !HEX.test(b)) return false;
  return bytesEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

/**
 * What a proof answers. Both use the same key and a nonce someone else chose, so each message names its
 * purpose: a host that answers any liveness nonce must not thereby sign a registration nonce that
 * activates its agent id with a stranger's contact details (or the reverse).
 */
type ProofPurpose = 'registration' | 'liveness';

function proofOf(proofKey: Uint8Array, purpose: ProofPurpose, agentId: string, nonce: string): string {
  return createHmac('sha256', proofKey).update(`ironlime-host-proof-v1:${purpose}\u0000${agentId}\u0000${nonce}`).digest('hex');
}

/** Constant-time check of a proof; the caller makes sure each nonce is used once. */
function verifyProof(proofKey: Uint8Array, purpose: ProofPurpose, agentId: string, nonce: string, proof: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(proof)) return false;
  const expected = Buffer.from(proofOf(proofKey, purpose, agentId, nonce), 'hex');
  return timingSafeEqual(expected, Buffer.from(proof, 'hex'));
}

/** The host's answer to a verifier's liveness nonce, hex: HMAC-SHA256(proof key, "ironlime-host-proof-v1:liveness" NUL agent id NUL nonce). */
export function hostSecretProof(proofKey: Uint8Array, agentId: string, nonce: string): string {
  return proofOf(proofKey, 'liveness', agentId, nonce);
}

export function verifyHostSecretProof(proofKey: Uint8Array, agentId: string, nonce: string, proof: string): boolean {
  return verifyProof(proofKey, 'liveness', agentId, nonce, proof);
}

/** The host's answer to the registrar's registration nonce, hex: as `hostSecretProof` with the label "registration". */
export function hostRegistrationProof(proofKey: Uint8Array, agentId: string, nonce: string): string {
  return proofOf(proofKey, 'registration', agentId, nonce);
}

export function verifyHostRegistrationProof(proofKey: Uint8Array, agentId: string, nonce: string, proof: string): boolean {
  return verifyProof(proofKey, 'registration', agentId, nonce, proof);
}
