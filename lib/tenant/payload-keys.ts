import { constants, createCipheriv, createHmac, createPublicKey, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { MIN_TPM_RSA_BITS } from '../tpm/weak-tpm-key.js';

/** Keylime's K, U and V are 32 bytes (AES-256 keys; spec §9.1). */
const KEY_BYTES = 32;
const GCM_IV = 16;

/** The tenant's half of the U/V/K scheme for one enrolment. */
export interface PayloadKeys {
  /** The bootstrap key the agent ends up with: K = U xor V. */
  readonly k: Buffer;
  /** Sent to the agent (`keys/ukey`), wrapped under its NK. */
  readonly u: Buffer;
  /** Sent to the verifier (`v`), which releases it to the agent after a good quote. */
  readonly v: Buffer;
  /** hex HMAC-SHA384(K, agent id): lets the agent recognise the right (U, V) pair. */
  readonly authTag: string;
}

/** Fresh random K and V, U = K xor V, and the `auth_tag` for `agentId` (Keylime `user_data_encrypt`). */
export function newPayloadKeys(agentId: string): PayloadKeys {
  const k = randomBytes(KEY_BYTES);
  const v = randomBytes(KEY_BYTES);
  const u = Buffer.alloc(KEY_BYTES);
  for (let i = 0; i < KEY_BYTES; i += 1) {
    u[i] = (k[i] ?? 0) ^ (v[i] ?? 0);
  }
  return { k, u, v, authTag: hmacHex(k, agentId) };
}

/** hex HMAC-SHA384(K, text): the `auth_tag`, and what `keys/verify?challenge=` must answer. */
export function hmacHex(k: Buffer, text: string): string {
  return createHmac('sha384', k).update(Buffer.from(text, 'utf8')).digest('hex');
}

/**
 * Why U cannot be wrapped under the agent's NK PEM, or undefined when it can: `wrapForAgent` needs an
 * RSA public key (Keylime agents make a 2048-bit one), and a key under 2048 bits would not protect U.
 */
export function agentKeyProblem(nkPublicPem: string): string | undefined {
  let key: KeyObject;
  try {
    key = createPublicKey(nkPublicPem);
  } catch {
    return 'the pubkey the agent returned is not a readable public key';
  }
  if (key.asymmetricKeyType !== 'rsa') {
    return `the pubkey the agent returned is not an RSA key (${key.asymmetricKeyType ?? 'unknown type'}): U is wrapped with RSA-OAEP`;
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  return bits < MIN_TPM_RSA_BITS ? `the pubkey the agent returned is a ${bits}-bit RSA key: at least ${MIN_TPM_RSA_BITS} bits are needed to wrap U` : undefined;
}

/** RSA-OAEP (SHA-1, MGF1-SHA-1, no label) under the agent's NK PEM, base64 — what Keylime agents decrypt. */
export function wrapForAgent(key: Buffer, nkPublicPem: string): string {
  return publicEncrypt({ key: nkPublicPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, key).toString('base64');
}

/** The `payload` field: base64(IV(16) ‖ AES-256-GCM ciphertext ‖ tag(16)) under K, no AAD (Keylime `crypto.encrypt`). */
export function encryptPayload(k: Buffer, plaintext: Uint8Array): string {
  const iv = randomBytes(GCM_IV);
  const cipher = createCipheriv('aes-256-gcm', k, iv);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}
