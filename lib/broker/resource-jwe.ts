import { FlattenedEncrypt, type FlattenedJWE } from 'jose';
import { RESOURCE_ENC, type TeePublicKey } from './tee-public-key.js';

/**
 * The resource answer: a flattened JWE (`protected`, `encrypted_key`, `iv`, `ciphertext`, `tag`, all
 * base64url; AAD = ASCII(BASE64URL(protected))) whose content key is wrapped to the node's tee-pubkey
 * with RSA-OAEP-256 or ECDH-ES+A256KW, content A256GCM — only the holder of the private key reads it.
 */
export function encryptResource(plaintext: Uint8Array, teeKey: TeePublicKey): Promise<FlattenedJWE> {
  return new FlattenedEncrypt(plaintext).setProtectedHeader({ alg: teeKey.alg, enc: RESOURCE_ENC }).encrypt(teeKey.key);
}
