import { constants, createCipheriv, createECDH, createHash, publicEncrypt, randomBytes } from 'node:crypto';
import { EC_WRAP_ALG, RESOURCE_ENC, RSA_WRAP_ALG, type TeePublicKey } from './tee-public-key.js';

/** The flattened JWE JSON serialization (RFC 7516 §7.2.2) of a resource answer. */
export interface ResourceJwe {
  readonly protected: string;
  readonly encrypted_key: string;
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

/** AES Key Wrap default IV (RFC 3394 §2.2.3.1). */
const AES_KW_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

/**
 * The resource answer: a flattened JWE whose content key (32 random bytes, A256GCM, AAD =
 * ASCII(BASE64URL(protected))) is wrapped to the node's tee-pubkey — RSA-OAEP-256 (RFC 7518 §4.3) or
 * ECDH-ES+A256KW (§4.6: ephemeral P-256 key in `epk`, Concat KDF with SHA-256 over Z and the
 * algorithm id, no PartyU/V info, then AES-256 Key Wrap). Built on node:crypto directly: jose's
 * WebCrypto path costs several times more per resource, and the test suite checks that jose's
 * `flattenedDecrypt` opens every answer.
 */
export function encryptResource(plaintext: Uint8Array, teeKey: TeePublicKey): ResourceJwe {
  const cek = randomBytes(32);
  let header: Record<string, unknown>;
  let encryptedKey: Buffer;
  if (teeKey.alg === RSA_WRAP_ALG) {
    header = { alg: RSA_WRAP_ALG, enc: RESOURCE_ENC };
    encryptedKey = publicEncrypt({ key: teeKey.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek);
  } else {
    const ecdh = createECDH('prime256v1');
    const ephemeralPublic = ecdh.generateKeys();
    const z = ecdh.computeSecret(teeKey.ecPoint as Buffer);
    const kek = concatKdf(z, EC_WRAP_ALG, 256);
    const wrap = createCipheriv('id-aes256-wrap', kek, AES_KW_IV);
    encryptedKey = Buffer.concat([wrap.update(cek), wrap.final()]);
    header = {
      alg: EC_WRAP_ALG,
      enc: RESOURCE_ENC,
      epk: { kty: 'EC', crv: 'P-256', x: ephemeralPublic.subarray(1, 33).toString('base64url'), y: ephemeralPublic.subarray(33, 65).toString('base64url') },
    };
  }
  const protectedB64 = Buffer.from(JSON.stringify(header), 'utf8').toString('base64url');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', cek, iv);
  cipher.setAAD(Buffer.from(protectedB64, 'ascii'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return {
    protected: protectedB64,
    encrypted_key: encryptedKey.toString('base64url'),
    iv: iv.toString('base64url'),
    ciphertext: ciphertext.toString('base64url'),
    tag: cipher.getAuthTag().toString('base64url'),
  };
}

/**
 * NIST SP 800-56A Concat KDF as JWA uses it (RFC 7518 §4.6.2) for one SHA-256 block (keys up to 256
 * bits): H(counter=1 ‖ Z ‖ len(alg) ‖ alg ‖ len(apu)=0 ‖ len(apv)=0 ‖ keydatalen).
 */
function concatKdf(z: Buffer, algorithm: string, keyBits: 256): Buffer {
  const u32 = (value: number): Buffer => {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(value);
    return out;
  };
  const alg = Buffer.from(algorithm, 'ascii');
  return createHash('sha256')
    .update(u32(1))
    .update(z)
    .update(u32(alg.length))
    .update(alg)
    .update(u32(0))
    .update(u32(0))
    .update(u32(keyBits))
    .digest();
}
