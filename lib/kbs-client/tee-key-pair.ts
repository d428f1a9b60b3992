import { constants, createDecipheriv, createECDH, generateKeyPair, privateDecrypt, type ECDH, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { FlattenedJWE } from 'jose';
import { AES_KW_IV, concatKdf } from '../broker/resource-jwe.js';
import { EC_WRAP_ALG, RESOURCE_ENC, RSA_WRAP_ALG } from '../broker/tee-public-key.js';

const generate = promisify(generateKeyPair);

/** Which kind of tee key to make: RSA-2048 (RSA-OAEP-256) or EC P-256 (ECDH-ES+A256KW). */
export type TeeKeyKind = 'rsa' | 'ec';

/** Protected header members a resource JWE may carry; anything else (`crit`, `zip`, …) is refused. */
const HEADER_MEMBERS: ReadonlySet<string> = new Set(['alg', 'enc', 'epk']);
const COORDINATE = /^[A-Za-z0-9_-]{43}$/;

/**
 * The node's ephemeral tee key pair: its public JWK travels in `runtime-data.tee-pubkey` (and so into
 * the quote through the report data); only its private key opens the resource JWE. Never stored.
 */
export class TeeKeyPair {
  private constructor(
    private readonly privateKey: KeyObject,
    /** EC keys: the private scalar loaded once for ECDH with each JWE's ephemeral key. */
    private readonly ecdh: ECDH | undefined,
    readonly publicJwk: Readonly<Record<string, unknown>>,
    readonly alg: string,
  ) {}

  static async generate(kind: TeeKeyKind = 'ec'): Promise<TeeKeyPair> {
    const { privateKey, publicKey } =
      kind === 'rsa' ? await generate('rsa', { modulusLength: 2048 }) : await generate('ec', { namedCurve: 'P-256' });
    const alg = kind === 'rsa' ? RSA_WRAP_ALG : EC_WRAP_ALG;
    let ecdh: ECDH | undefined;
    if (kind === 'ec') {
      ecdh = createECDH('prime256v1');
      ecdh.setPrivateKey(Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url'));
    }
    return new TeeKeyPair(privateKey, ecdh, Object.freeze({ ...publicKey.export({ format: 'jwk' }), alg }), alg);
  }

  /**
   * Opens a flattened resource JWE wrapped to this key (the inverse of the broker's `encryptResource`,
   * on node:crypto: jose's WebCrypto path was most of a client's CPU per resource; the tests check both
   * directions against jose). Only this key's algorithm with A256GCM is accepted, the protected header
   * may hold nothing else (an EC one its `epk`), and any failed check or authentication throws.
   */
  decrypt(jwe: FlattenedJWE): Promise<Uint8Array> {
    return Promise.resolve().then(() => this.open(jwe));
  }

  private open(jwe: FlattenedJWE): Uint8Array {
    if (typeof jwe.protected !== 'string' || jwe.encrypted_key === undefined || jwe.iv === undefined || jwe.tag === undefined) {
      throw new Error('resource JWE: protected header, encrypted key, iv and tag are required');
    }
    const header = JSON.parse(Buffer.from(jwe.protected, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (header === null || typeof header !== 'object' || Object.keys(header).some((member) => !HEADER_MEMBERS.has(member))) {
      throw new Error('resource JWE: unexpected protected header members');
    }
    if (header['alg'] !== this.alg || header['enc'] !== RESOURCE_ENC) {
      throw new Error(`resource JWE: need alg ${this.alg} and enc ${RESOURCE_ENC}`);
    }
    const encryptedKey = Buffer.from(jwe.encrypted_key, 'base64url');
    const cek = this.ecdh === undefined
      ? privateDecrypt({ key: this.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, encryptedKey)
      : this.unwrapEc(this.ecdh, header['epk'], encryptedKey);
    const iv = Buffer.from(jwe.iv, 'base64url');
    const tag = Buffer.from(jwe.tag, 'base64url');
    if (cek.length !== 32 || iv.length !== 12 || tag.length !== 16) {
      throw new Error('resource JWE: wrong key, iv or tag length');
    }
    const decipher = createDecipheriv('aes-256-gcm', cek, iv);
    decipher.setAAD(Buffer.from(jwe.protected, 'ascii'));
    decipher.setAuthTag(tag);
    return new Uint8Array(Buffer.concat([decipher.update(Buffer.from(jwe.ciphertext, 'base64url')), decipher.final()]));
  }

  /** ECDH-ES+A256KW (RFC 7518 §4.6): Z with the ephemeral P-256 key, Concat KDF, AES-256 Key Unwrap. */
  private unwrapEc(ecdh: ECDH, epk: unknown, encryptedKey: Buffer): Buffer {
    const point = epk as Record<string, unknown> | undefined;
    if (point?.['kty'] !== 'EC' || point['crv'] !== 'P-256' || !COORDINATE.test(String(point['x'])) || !COORDINATE.test(String(point['y']))) {
      throw new Error('resource JWE: epk must be a P-256 public key');
    }
    const ephemeral = Buffer.concat([Buffer.from([4]), Buffer.from(point['x'] as string, 'base64url'), Buffer.from(point['y'] as string, 'base64url')]);
    // computeSecret refuses a point that is not on the curve.
    const kek = concatKdf(ecdh.computeSecret(ephemeral), EC_WRAP_ALG, 256);
    const unwrap = createDecipheriv('id-aes256-wrap', kek, AES_KW_IV);
    return Buffer.concat([unwrap.update(encryptedKey), unwrap.final()]);
  }
}
