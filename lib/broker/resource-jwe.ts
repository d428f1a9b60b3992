import { createCipheriv, randomBytes } from 'node:crypto';
import { FlattenedEncrypt } from 'jose';
import { EphemeralKeyPool, ephemeralKeyGenerator } from './ephemeral-key-pool.js';
import { RESOURCE_ENC, type TeeCurve, type TeePublicKey } from './tee-public-key.js';

/** The flattened JWE JSON serialization (RFC 7516 §7.2.2) of a resource answer: kbs-types `Response`. */
export interface ResourceJwe {
  readonly protected: string;
  readonly encrypted_key: string;
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

/** A256GCM: 256-bit content key, 96-bit IV (RFC 7518 §5.3). */
const CEK_BYTES = 32;
const IV_BYTES = 12;

/**
 * The ECDH-ES ephemeral keys of this process's EC answers, each used for one answer. Made in batches
 * ahead of the requests: a WebCrypto key generation per answer cost one more thread-pool round trip on
 * the request path, and batched generation costs less CPU per key (docs/broker.md, sixth pass).
 */
const ephemeralKeys: Readonly<Record<TeeCurve, EphemeralKeyPool>> = {
  'P-256': new EphemeralKeyPool(),
  // A pool starts filling at its first take: a broker whose nodes use P-256 makes no P-521 key.
  'P-521': new EphemeralKeyPool(64, 16, ephemeralKeyGenerator('P-521')),
};

/**
 * The resource answer: a fresh A256GCM content key wrapped to the node's tee-pubkey with RSA-OAEP-256
 * (RFC 7518 §4.3) or ECDH-ES+A256KW (§4.6: an ephemeral key on the tee key's curve in `epk`, Concat KDF without
 * PartyU/V info, AES-256 Key Wrap); AAD = ASCII(BASE64URL(protected)). The members are kbs-types
 * `Response`'s, in trustee's order (no `aad`, no unprotected headers).
 *
 * The protected header must be the text trustee's client rebuilds: it does not take the AAD from the
 * `protected` it received but parses it into kbs-types `ProtectedHeader` and serialises that again
 * (`generate_aad`): `alg`, `enc`, then the other members, whose objects serde_json writes with sorted
 * keys unless built with `preserve_order`. `{"alg","enc"}` is that text already. jose writes `epk` as
 * `{x, crv, kty, y}`, which a sorting client rebuilds as `{crv, kty, x, y}`, and the tag then fails;
 * the header jose makes cannot be reordered afterwards, since it is the AAD. So for an EC key jose
 * does the key agreement and wraps a content key made here, and the content is sealed under
 * `{"alg","enc","epk":{"crv","kty","x","y"}}`, the order trustee's own server writes, which both kinds
 * of client rebuild byte for byte.
 */
export async function encryptResource(plaintext: Uint8Array, teeKey: TeePublicKey): Promise<ResourceJwe> {
  return teeKey.curve === null ? encryptWithJose(plaintext, teeKey) : encryptWithSortedEpk(plaintext, teeKey, teeKey.curve);
}

async function encryptWithJose(plaintext: Uint8Array, teeKey: TeePublicKey): Promise<ResourceJwe> {
  const jwe = await new FlattenedEncrypt(plaintext).setProtectedHeader({ alg: teeKey.alg, enc: RESOURCE_ENC }).encrypt(teeKey.key);
  const { protected: header, encrypted_key: encryptedKey, iv, ciphertext, tag } = jwe;
  if (header === undefined || encryptedKey === undefined || iv === undefined || tag === undefined) {
    throw new Error('jose returned a JWE without a protected header, encrypted key, IV or tag');
  }
  return { protected: header, encrypted_key: encryptedKey, iv, ciphertext, tag };
}

async function encryptWithSortedEpk(plaintext: Uint8Array, teeKey: TeePublicKey, curve: TeeCurve): Promise<ResourceJwe> {
  // The content key and the IV of the answer's content, drawn in one call (one call of the CSPRNG, not two).
  const random = randomBytes(CEK_BYTES + IV_BYTES);
  const cek = random.subarray(0, CEK_BYTES);
  const iv = random.subarray(CEK_BYTES);
  try {
    // jose's JWE of nothing under our content key and with an ephemeral key from the pool: only its
    // encrypted key and its epk are used. (`setContentEncryptionKey` and the `epk` of
    // `setKeyManagementParameters` are marked deprecated, "for testing and vector validation", in jose
    // 6's typings; they are the one way to have jose agree with a key made ahead and wrap a content key
    // that is then used under another header. A jose without them fails this path's tests, not silently.)
    // jose draws its own IV for that empty content: it must not be given ours, since two GCM messages
    // under one key and one IV would give away the key's GHASH subkey.
    const wrapping = await new FlattenedEncrypt(new Uint8Array(0))
      .setProtectedHeader({ alg: teeKey.alg, enc: RESOURCE_ENC })
      .setContentEncryptionKey(cek)
      .setKeyManagementParameters({ epk: await ephemeralKeys[curve].take() })
      .encrypt(teeKey.key);
    if (wrapping.protected === undefined || wrapping.encrypted_key === undefined) {
      throw new Error('jose returned a JWE without a protected header or encrypted key');
    }
    const { crv, kty, x, y } = ephemeralKey(wrapping.protected);
    const header = Buffer.from(JSON.stringify({ alg: teeKey.alg, enc: RESOURCE_ENC, epk: { crv, kty, x, y } })).toString('base64url');
    const cipher = createCipheriv('aes-256-gcm', cek, iv).setAAD(Buffer.from(header, 'ascii'));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return {
      protected: header,
      encrypted_key: wrapping.encrypted_key,
      iv: iv.toString('base64url'),
      ciphertext: ciphertext.toString('base64url'),
      tag: cipher.getAuthTag().toString('base64url'),
    };
  } finally {
    cek.fill(0);
  }
}

/** The `epk` of the protected header jose made: a public EC JWK. */
function ephemeralKey(protectedHeader: string): { crv: string; kty: string; x: string; y: string } {
  const { epk } = JSON.parse(Buffer.from(protectedHeader, 'base64url').toString('utf8')) as { epk?: Record<string, unknown> };
  const { crv, kty, x, y } = epk ?? {};
  if (typeof crv !== 'string' || typeof kty !== 'string' || typeof x !== 'string' || typeof y !== 'string') {
    throw new Error('jose returned an ECDH-ES header without an EC epk');
  }
  return { crv, kty, x, y };
}
