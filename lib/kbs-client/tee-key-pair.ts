import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { flattenedDecrypt, type FlattenedJWE } from 'jose';
import { EC_WRAP_ALG, RESOURCE_ENC, RSA_WRAP_ALG } from '../broker/tee-public-key.js';

const generate = promisify(generateKeyPair);

/** Which kind of tee key to make: RSA-2048 (RSA-OAEP-256) or EC P-256 (ECDH-ES+A256KW). */
export type TeeKeyKind = 'rsa' | 'ec';

/**
 * The node's ephemeral tee key pair: its public JWK travels in `runtime-data.tee-pubkey` (and so into
 * the quote through the report data); only its private key opens the resource JWE. Never stored.
 */
export class TeeKeyPair {
  private constructor(
    private readonly privateKey: KeyObject,
    readonly publicJwk: Readonly<Record<string, unknown>>,
    readonly alg: string,
  ) {}

  static async generate(kind: TeeKeyKind = 'ec'): Promise<TeeKeyPair> {
    const { privateKey, publicKey } =
      kind === 'rsa' ? await generate('rsa', { modulusLength: 2048 }) : await generate('ec', { namedCurve: 'P-256' });
    const alg = kind === 'rsa' ? RSA_WRAP_ALG : EC_WRAP_ALG;
    return new TeeKeyPair(privateKey, Object.freeze({ ...publicKey.export({ format: 'jwk' }), alg }), alg);
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
