import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

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

/** The host's answer to a verifier nonce: HMAC-SHA256(proof key, agent id NUL nonce), hex. */
export function hostSecretProof(proofKey: Uint8Array, agentId: string, nonce: string): string {
  return createHmac('sha256', proofKey).update(`${agentId}\u0000${nonce}`).digest('hex');
}

/** Constant-time check of a proof; the caller makes sure each nonce is used once. */
export function verifyHostSecretProof(proofKey: Uint8Array, agentId: string, nonce: string, proof: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(proof)) return false;
  const expected = Buffer.from(hostSecretProof(proofKey, agentId, nonce), 'hex');
  return timingSafeEqual(expected, Buffer.from(proof, 'hex'));
}
