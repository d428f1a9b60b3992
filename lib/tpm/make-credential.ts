import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHmac,
  diffieHellman,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { BigEndianWriter } from '../bytes/byte-writer.js';
import { TPM_ALG_AES, TPM_ALG_CFB, TPM_ALG_ECC, TPM_ALG_NULL, TPM_ALG_RSA, algName, curveInfo, hashInfo, type TpmHashInfo } from './constants.js';
import { marshalCredentialBlob } from './credential-blob.js';
import { kdfa, kdfe } from './kdf.js';
import { TpmKeyError } from './tpm-errors.js';
import { parsePublicArea, type EccPublicArea, type TpmtPublic } from './tpmt-public.js';
import { publicKeyFromTpmtPublic } from './tpmt-public-key.js';

/** What the credential protection of an EK uses (Part 1 §24): its name hash and AES key size. */
export interface CredentialProtection {
  readonly hash: TpmHashInfo;
  /** AES key bits from the EK's symmetric definition (128 for the TCG EK templates). */
  readonly aesBits: number;
}

/** The name hash and AES-CFB key size an EK protects credentials with; throws `TpmKeyError`. */
export function credentialProtection(ek: TpmtPublic): CredentialProtection {
  const hash = hashInfo(ek.nameAlg);
  if (hash === undefined) {
    throw new TpmKeyError(`EK nameAlg ${algName(ek.nameAlg)} is not a hash`);
  }
  if (ek.type !== TPM_ALG_RSA && ek.type !== TPM_ALG_ECC) {
    throw new TpmKeyError(`EK type ${algName(ek.type)} cannot protect a credential`);
  }
  const { algorithm, keyBits, mode } = ek.parameters.symmetric;
  if (algorithm !== TPM_ALG_AES || mode !== TPM_ALG_CFB || ![128, 192, 256].includes(keyBits ?? 0)) {
    const sym = algorithm === TPM_ALG_NULL ? 'null' : `${algName(algorithm)}-${keyBits ?? 0}-${algName(mode ?? 0)}`;
    throw new TpmKeyError(`EK symmetric algorithm ${sym} is not AES-CFB`);
  }
  return { hash, aesBits: keyBits as number };
}

/** AES-CFB (full-block feedback, IV 0; Part 1 §11.4.6.2 and §24.4) in either direction. */
export function aesCfb(key: Uint8Array, data: Uint8Array, decrypt: boolean): Uint8Array {
  const name = `aes-${key.length * 8}-cfb`;
  const iv = new Uint8Array(16);
  const cipher = decrypt ? createDecipheriv(name, key, iv) : createCipheriv(name, key, iv);
  return new Uint8Array(Buffer.concat([cipher.update(data), cipher.final()]));
}

/** The TPMS_ECC_POINT bytes of a point: | u16 len | x | u16 len | y | (Part 2 Table 183). */
export function marshalEccPoint(x: Uint8Array, y: Uint8Array): Uint8Array {
  return new BigEndianWriter().tpm2b(x).tpm2b(y).finish();
}

/** Options that fix the randomness, for known-answer tests. Production callers pass nothing. */
export interface MakeCredentialRandomness {
  /** RSA EK: the seed (nameAlg digest size). RSA-OAEP padding stays random. */
  readonly seed?: Uint8Array;
  /** ECC EK: the ephemeral private key, on the EK's curve. */
  readonly ephemeralKey?: KeyObject;
}

export interface MakeCredentialInput {
  /** EK public area: TPM2B_PUBLIC or TPMT_PUBLIC bytes, or parsed. */
  readonly ekPublic: Uint8Array | TpmtPublic;
  /** Name of the key the credential is bound to (the AK): nameAlg ‖ H(TPMT_PUBLIC). */
  readonly akName: Uint8Array;
  /** The credential, at most the EK nameAlg's digest size (Keylime: 32 ASCII characters). */
  readonly secret: Uint8Array;
  readonly randomness?: MakeCredentialRandomness;
}

/**
 * TPM2_MakeCredential in software (TPM 2.0 Part 3 §12.6, Part 1 §24; Keylime `tpm_util.makecredential`,
 * keylime-protocol §5.1). A seed is protected to the EK — RSA-OAEP with label "IDENTITY\0" for RSA
 * EKs, ECDH + KDFe("IDENTITY") with an ephemeral key for ECC EKs — and from it come the AES-CFB key
 * (KDFa "STORAGE", bound to `akName`) that encrypts the credential and the HMAC key (KDFa
 * "INTEGRITY") of the outer HMAC over encIdentity ‖ akName. Returns the tpm2-tools credential file
 * (0xBADCC0DE ‖ 1 ‖ TPM2B_ID_OBJECT ‖ TPM2B_ENCRYPTED_SECRET) that `tpm2_activatecredential`
 * accepts and that Keylime's registrar sends as `blob`. Throws `TpmKeyError` for an unusable EK or
 * an oversized secret, `TpmParseError` for malformed EK bytes.
 */
export function makeCredential(input: MakeCredentialInput): Uint8Array {
  const ek = input.ekPublic instanceof Uint8Array ? parsePublicArea(input.ekPublic) : input.ekPublic;
  const { hash, aesBits } = credentialProtection(ek);
  if (input.secret.length === 0 || input.secret.length > hash.digestSize) {
    throw new TpmKeyError(`credential of ${input.secret.length} byte(s); 1 to ${hash.digestSize} allowed`);
  }
  const ekKey = publicKeyFromTpmtPublic(ek);
  const { seed, encryptedSecret } = ek.type === TPM_ALG_RSA
    ? rsaSeed(ekKey, hash, input.randomness?.seed)
    : eccSeed(ekKey, ek as EccPublicArea, hash, input.randomness?.ephemeralKey);

  const symKey = kdfa(hash.algId, seed, 'STORAGE', input.akName, new Uint8Array(0), aesBits);
  const plain = new BigEndianWriter().tpm2b(input.secret).finish();
  const encIdentity = aesCfb(symKey, plain, false);
  const hmacKey = kdfa(hash.algId, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), hash.digestSize * 8);
  const integrityHmac = new Uint8Array(createHmac(hash.nodeName, hmacKey).update(encIdentity).update(input.akName).digest());
  return marshalCredentialBlob({ integrityHmac, encIdentity, encryptedSecret });
}

interface ProtectedSeed {
  readonly seed: Uint8Array;
  readonly encryptedSecret: Uint8Array;
}

/** OAEP label for credential seeds: "IDENTITY" with its terminating zero (Part 1 §24.4). */
export const IDENTITY_LABEL = new Uint8Array(Buffer.from('IDENTITY\0', 'latin1'));

function rsaSeed(ekKey: KeyObject, hash: TpmHashInfo, fixed: Uint8Array | undefined): ProtectedSeed {
  const seed = fixed ?? new Uint8Array(randomBytes(hash.digestSize));
  const encryptedSecret = publicEncrypt(
    { key: ekKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.nodeName, oaepLabel: IDENTITY_LABEL },
    seed,
  );
  return { seed, encryptedSecret: new Uint8Array(encryptedSecret) };
}

function eccSeed(ekKey: KeyObject, ek: EccPublicArea, hash: TpmHashInfo, fixed: KeyObject | undefined): ProtectedSeed {
  const curve = curveInfo(ek.parameters.curveId);
  if (curve === undefined) {
    throw new TpmKeyError(`EK curve 0x${ek.parameters.curveId.toString(16)} is not supported`);
  }
  const ephemeral = fixed ?? generateKeyPairSync('ec', { namedCurve: curve.nodeName }).privateKey;
  const jwk = ephemeral.export({ format: 'jwk' });
  const x = padTo(Buffer.from(jwk.x ?? '', 'base64url'), curve.size);
  const y = padTo(Buffer.from(jwk.y ?? '', 'base64url'), curve.size);
  const z = new Uint8Array(diffieHellman({ privateKey: ephemeral, publicKey: ekKey }));
  const seed = kdfe(hash.algId, z, 'IDENTITY', x, ek.unique.x, hash.digestSize * 8);
  return { seed, encryptedSecret: marshalEccPoint(x, y) };
}

function padTo(value: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(value.subarray(Math.max(0, value.length - size)), Math.max(0, size - value.length));
  return out;
}
