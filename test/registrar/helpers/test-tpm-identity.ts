import {
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  privateDecrypt,
  constants as cryptoConstants,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { BigEndianReader } from '../../../lib/bytes/byte-reader.js';
import { BigEndianWriter } from '../../../lib/bytes/byte-writer.js';
import { TpmParseError } from '../../../lib/bytes/parse-errors.js';
import { newRsaKeyPairSync } from '../../../lib/pki/rsa-key-source.js';

/**
 * A TPM identity made in software for registrar tests: an EK and an AK as node:crypto key pairs, their
 * TPM2B_PUBLIC encodings (TCG EK profile templates, TPM 2.0 Part 2 §12.2.4 TPMT_PUBLIC), and the
 * inverse of MakeCredential (TPM 2.0 Part 1 §24, Part 3 §12.5 TPM2_ActivateCredential). It is written
 * independently of lib/tpm so the registrar's blobs are checked by a second implementation.
 */

const TPM_ALG_RSA = 0x0001;
const TPM_ALG_ECC = 0x0023;
const TPM_ALG_SHA256 = 0x000b;
const TPM_ALG_AES = 0x0006;
const TPM_ALG_CFB = 0x0043;
const TPM_ALG_NULL = 0x0010;
const TPM_ALG_RSASSA = 0x0014;
const TPM_ALG_ECDSA = 0x0018;
const TPM_ECC_NIST_P256 = 0x0003;
/** fixedTPM|fixedParent|sensitiveDataOrigin|adminWithPolicy|restricted|decrypt (EK profile). */
export const EK_ATTRIBUTES = 0x000300b2;
/** fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign (Keylime AK_EXPECTED_ATTRS). */
export const AK_ATTRIBUTES = 0x00050072;
/** TCG EK profile PolicyA (PolicySecret(TPM_RH_ENDORSEMENT)), SHA-256. */
const POLICY_A = Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex');
const CREDENTIAL_MAGIC = 0xbadcc0de;

export type KeyKind = 'rsa' | 'ecc';

export interface TestKey {
  readonly kind: KeyKind;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** TPM2B_PUBLIC: u16 size ‖ TPMT_PUBLIC. */
  readonly tpm2bPublic: Uint8Array;
  /** nameAlg ‖ SHA-256(TPMT_PUBLIC). */
  readonly name: Uint8Array;
}

export function generateTestKey(kind: KeyKind, role: 'ek' | 'ak', attributes?: number): TestKey {
  const pair =
    kind === 'rsa'
      ? newRsaKeyPairSync()
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return describeKey(kind, role, pair.privateKey, pair.publicKey, attributes);
}

/** Rebuilds a TestKey from a PKCS#8 PEM (tests keep a few pre-generated RSA keys to save time). */
export function testKeyFromPem(kind: KeyKind, role: 'ek' | 'ak', pkcs8Pem: string, attributes?: number): TestKey {
  const privateKey = createPrivateKey(pkcs8Pem);
  return describeKey(kind, role, privateKey, createPublicKey(privateKey), attributes);
}

function describeKey(
  kind: KeyKind,
  role: 'ek' | 'ak',
  privateKey: KeyObject,
  publicKey: KeyObject,
  attributes = role === 'ek' ? EK_ATTRIBUTES : AK_ATTRIBUTES,
): TestKey {
  const jwk = publicKey.export({ format: 'jwk' });
  const w = new BigEndianWriter();
  w.u16(kind === 'rsa' ? TPM_ALG_RSA : TPM_ALG_ECC).u16(TPM_ALG_SHA256).u32(attributes);
  w.tpm2b(role === 'ek' ? POLICY_A : new Uint8Array(0));
  // symmetric: AES-128-CFB for the EK (a storage parent), NULL for the signing AK.
  if (role === 'ek') {
    w.u16(TPM_ALG_AES).u16(128).u16(TPM_ALG_CFB);
  } else {
    w.u16(TPM_ALG_NULL);
  }
  if (kind === 'rsa') {
    if (role === 'ek') {
      w.u16(TPM_ALG_NULL);
    } else {
      w.u16(TPM_ALG_RSASSA).u16(TPM_ALG_SHA256);
    }
    w.u16(2048).u32(0);
    w.tpm2b(Buffer.from(jwk.n ?? '', 'base64url'));
  } else {
    if (role === 'ek') {
      w.u16(TPM_ALG_NULL);
    } else {
      w.u16(TPM_ALG_ECDSA).u16(TPM_ALG_SHA256);
    }
    w.u16(TPM_ECC_NIST_P256).u16(TPM_ALG_NULL);
    w.tpm2b(Buffer.from(jwk.x ?? '', 'base64url')).tpm2b(Buffer.from(jwk.y ?? '', 'base64url'));
  }
  const tpmtPublic = w.finish();
  const tpm2bPublic = new BigEndianWriter().tpm2b(tpmtPublic).finish();
  const name = new BigEndianWriter().u16(TPM_ALG_SHA256).bytes(createHash('sha256').update(tpmtPublic).digest()).finish();
  return { kind, privateKey, publicKey, tpm2bPublic, name };
}

/**
 * TPM2_ActivateCredential in software: recovers the credential from a tpm2-tools credential blob
 * (0xBADCC0DE ‖ u32 1 ‖ TPM2B_ID_OBJECT ‖ TPM2B_ENCRYPTED_SECRET) with the EK private key, after
 * checking the outer HMAC binds it to `akName`. Throws if anything does not match.
 */
export function activateCredential(ek: TestKey, akName: Uint8Array, blob: Uint8Array): Buffer {
  const r = new BigEndianReader(blob, TpmParseError);
  if (r.u32() !== CREDENTIAL_MAGIC || r.u32() !== 1) {
    throw new Error('not a version-1 credential blob');
  }
  const idObject = new BigEndianReader(r.tpm2b(), TpmParseError);
  const outerHmac = idObject.tpm2b();
  const encIdentity = idObject.rest();
  const encSecret = r.tpm2b();
  r.finish();
  const seed = ek.kind === 'rsa' ? rsaSeed(ek, encSecret) : eccSeed(ek, encSecret);
  const hmacKey = kdfa(seed, 'INTEGRITY', new Uint8Array(0), 256);
  const expected = createHmac('sha256', hmacKey).update(encIdentity).update(akName).digest();
  if (expected.length !== outerHmac.length || !timingSafeEqual(expected, outerHmac)) {
    throw new Error('outer HMAC mismatch: blob not made for this EK/AK');
  }
  const symKey = kdfa(seed, 'STORAGE', akName, 128);
  const decipher = createDecipheriv('aes-128-cfb', symKey, Buffer.alloc(16));
  const plain = Buffer.concat([decipher.update(encIdentity), decipher.final()]);
  return Buffer.from(new BigEndianReader(plain, TpmParseError).tpm2b());
}

/** hex(HMAC-SHA384(key = base64(credential) as UTF-8, agent id)): the Rust agent's `auth_tag`. */
export function authTagFor(credential: Uint8Array, agentId: string): string {
  return createHmac('sha384', Buffer.from(Buffer.from(credential).toString('base64'), 'utf8'))
    .update(agentId, 'utf8')
    .digest('hex');
}

function rsaSeed(ek: TestKey, encSecret: Uint8Array): Buffer {
  return privateDecrypt(
    {
      key: ek.privateKey,
      padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
      oaepLabel: Buffer.from('IDENTITY\0', 'latin1'),
    },
    encSecret,
  );
}

function eccSeed(ek: TestKey, encSecret: Uint8Array): Buffer {
  const r = new BigEndianReader(encSecret, TpmParseError);
  const x = r.tpm2b();
  const y = r.tpm2b();
  r.finish();
  const ephemeral = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: Buffer.from(x).toString('base64url'), y: Buffer.from(y).toString('base64url') },
    format: 'jwk',
  });
  const z = diffieHellman({ privateKey: ek.privateKey, publicKey: ephemeral });
  const ekX = Buffer.from(ek.publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  // KDFe (SP 800-56A concatenation KDF), one SHA-256 block gives the 256-bit seed.
  return createHash('sha256')
    .update(u32(1))
    .update(z)
    .update(Buffer.from('IDENTITY\0', 'latin1'))
    .update(x)
    .update(ekX)
    .digest();
}

/** KDFa (SP 800-108 counter mode, HMAC-SHA256), TPM 2.0 Part 1 §11.4.10.2. */
function kdfa(key: Uint8Array, label: string, contextU: Uint8Array, bits: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 1; out.length * 32 * 8 < bits; i += 1) {
    out.push(
      createHmac('sha256', key)
        .update(u32(i))
        .update(Buffer.from(`${label}\0`, 'latin1'))
        .update(contextU)
        .update(u32(bits))
        .digest(),
    );
  }
  return Buffer.concat(out).subarray(0, bits / 8);
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
}

