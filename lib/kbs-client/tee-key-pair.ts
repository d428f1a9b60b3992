import { webcrypto } from 'node:crypto';
import { flattenedDecrypt, type FlattenedJWE } from 'jose';
import { EC_WRAP_ALG, RESOURCE_ENC, RSA_WRAP_ALG } from '../broker/tee-public-key.js';

/** Which kind of tee key to make: RSA-2048 (RSA-OAEP-256), EC P-256 or EC P-521 (ECDH-ES+A256KW). */
export type TeeKeyKind = 'rsa' | 'ec' | 'ec-p521';

/** Every kind, for option parsers. */
export const TEE_KEY_KINDS: readonly TeeKeyKind[] = ['ec', 'ec-p521', 'rsa'];

/** WebCrypto generation parameters and usages per kind, as jose's JWE decryption wants the private key. */
const GENERATE = {
  rsa: { algorithm: { name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, usages: ['encrypt', 'decrypt'] },
  ec: { algorithm: { name: 'ECDH', namedCurve: 'P-256' }, usages: ['deriveBits'] },
  'ec-p521': { algorithm: { name: 'ECDH', namedCurve: 'P-521' }, usages: ['deriveBits'] },
} as const;

/** The public members a tee-pubkey carries (kbs-types `TeePubKey`), without WebCrypto's `ext`/`key_ops`. */
const PUBLIC_MEMBERS = { rsa: ['kty', 'n', 'e'], ec: ['kty', 'crv', 'x', 'y'], 'ec-p521': ['kty', 'crv', 'x', 'y'] } as const;

/**
 * The node's tee key pair, made once per `KbsClient` (as guest-components' client makes one in its
 * builder) and never stored: its public JWK travels in `runtime-data.tee-pubkey` (and so into
 * the quote through the report data); only its private key opens the resource JWE. The
 * private key is a non-extractable WebCrypto key made for its algorithm, so jose uses it as it is.
 */
export class TeeKeyPair {
  private constructor(
    private readonly privateKey: webcrypto.CryptoKey,
    readonly publicJwk: Readonly<Record<string, unknown>>,
    readonly alg: string,
  ) {}

  static async generate(kind: TeeKeyKind = 'ec'): Promise<TeeKeyPair> {
    const { algorithm, usages } = GENERATE[kind];
    const { privateKey, publicKey } = (await webcrypto.subtle.generateKey(algorithm, false, [...usages])) as webcrypto.CryptoKeyPair;
    const exported = (await webcrypto.subtle.exportKey('jwk', publicKey)) as Record<string, unknown>;
    const alg = kind === 'rsa' ? RSA_WRAP_ALG : EC_WRAP_ALG;
    const publicJwk = Object.fromEntries(PUBLIC_MEMBERS[kind].map((member) => [member, exported[member]]));
    return new TeeKeyPair(privateKey, Object.freeze({ ...publicJwk, alg }), alg);
  }

  /** Opens a resource JWE wrapped to this key; only this key's algorithm and A256GCM are accepted. */
  async decrypt(jwe: FlattenedJWE): Promise<Uint8Array> {
    const { plaintext } = await flattenedDecrypt(jwe, this.privateKey, {
      keyManagementAlgorithms: [this.alg],
      contentEncryptionAlgorithms: [RESOURCE_ENC],
    });
    return plaintext;
  }
}
