import { FlattenedEncrypt } from 'jose';
import { RESOURCE_ENC, type TeePublicKey } from './tee-public-key.js';

/** The flattened JWE JSON serialization (RFC 7516 §7.2.2) of a resource answer: kbs-types `Response`. */
export interface ResourceJwe {
  readonly protected: string;
  readonly encrypted_key: string;
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

/**
 * The resource answer, encrypted by jose: a fresh A256GCM content key wrapped to the node's tee-pubkey
 * with RSA-OAEP-256 (RFC 7518 §4.3) or ECDH-ES+A256KW (§4.6: an ephemeral P-256 key in `epk`, Concat
 * KDF without PartyU/V info, AES-256 Key Wrap); AAD = ASCII(BASE64URL(protected)). The protected
 * header is `{alg, enc}` and, for EC keys, the `epk` jose adds; the members are kbs-types `Response`'s,
 * in trustee's order (no `aad`, no unprotected headers).
 */
export async function encryptResource(plaintext: Uint8Array, teeKey: TeePublicKey): Promise<ResourceJwe> {
  const jwe = await new FlattenedEncrypt(plaintext).setProtectedHeader({ alg: teeKey.alg, enc: RESOURCE_ENC }).encrypt(teeKey.key);
  const { protected: header, encrypted_key: encryptedKey, iv, ciphertext, tag } = jwe;
  if (header === undefined || encryptedKey === undefined || iv === undefined || tag === undefined) {
    throw new Error('jose returned a JWE without a protected header, encrypted key, IV or tag');
  }
  return { protected: header, encrypted_key: encryptedKey, iv, ciphertext, tag };
}
