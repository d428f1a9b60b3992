import { constants, createHmac, createPublicKey, diffieHellman, privateDecrypt, timingSafeEqual, type KeyObject } from 'node:crypto';
import { BigEndianReader } from '../../bytes/byte-reader.js';
import { TpmParseError } from '../../bytes/parse-errors.js';
import { TPM_ALG_ECC, TPM_ALG_RSA, algName, curveInfo, type TpmHashInfo } from '../../tpm/constants.js';
import { parseCredentialBlob } from '../../tpm/credential-blob.js';
import { kdfa, kdfe } from '../../tpm/kdf.js';
import { IDENTITY_LABEL, aesCfb, credentialProtection } from '../../tpm/make-credential.js';
import type { TpmtPublic } from '../../tpm/tpmt-public.js';
import { TpmAccessError } from '../tpm-access-error.js';

/** TPM_RC_INTEGRITY (Part 2 §6.6.3): the outer HMAC does not match, e.g. the blob is for another AK. */
export const TPM_RC_INTEGRITY = 0x09f;
/** TPM_RC_VALUE: the encrypted seed does not decrypt under the EK. */
export const TPM_RC_VALUE = 0x084;
/** TPM_RC_SIZE: the decrypted credential's size field does not fit. */
export const TPM_RC_SIZE = 0x095;

/** The EK as the software TPM holds it. */
export interface EkKeyPair {
  publicArea: TpmtPublic;
  privateKey: KeyObject;
}

/**
 * TPM2_ActivateCredential (Part 3 §12.5) in software, the inverse of `makeCredential` (Part 1 §24):
 * 1. seed = RSA-OAEP-decrypt(EK, encSecret, label "IDENTITY\0") — or, for an ECC EK,
 *    seed = KDFe(nameAlg, ECDH(EK, ephemeral).x, "IDENTITY", ephemeral.x, EK.x);
 * 2. HMAC key = KDFa(nameAlg, seed, "INTEGRITY"); integrityHMAC must equal HMAC(encIdentity ‖ AK name),
 *    compared in constant time — this is what binds the credential to the AK;
 * 3. symKey = KDFa(nameAlg, seed, "STORAGE", AK name); encIdentity is AES-CFB-decrypted (IV 0) to a
 *    TPM2B_DIGEST holding the credential.
 * A malformed blob throws TpmParseError; a refused one TpmAccessError with the code a TPM would return.
 */
export function activateCredentialInSoftware(ek: EkKeyPair, akName: Uint8Array, blob: Uint8Array): Uint8Array {
  const { integrityHmac, encIdentity, encryptedSecret } = parseCredentialBlob(blob);
  const { hash, aesBits } = credentialProtection(ek.publicArea);
  const seed = recoverSeed(ek, encryptedSecret, hash);
  const hmacKey = kdfa(hash.algId, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), hash.digestSize * 8);
  const expected = createHmac(hash.nodeName, hmacKey).update(encIdentity).update(akName).digest();
  if (integrityHmac.length !== expected.length || !timingSafeEqual(integrityHmac, expected)) {
    throw new TpmAccessError('credential activation failed: integrity check of the credential failed (made for another AK or EK?)', {
      responseCode: TPM_RC_INTEGRITY,
    });
  }
  const symKey = kdfa(hash.algId, seed, 'STORAGE', akName, new Uint8Array(0), aesBits);
  const plain = aesCfb(symKey, encIdentity, true);
  const size = plain.length >= 2 ? ((plain[0] ?? 0) << 8) | (plain[1] ?? 0) : -1;
  if (size !== plain.length - 2) {
    throw new TpmAccessError('credential activation failed: the decrypted credential has a bad size', { responseCode: TPM_RC_SIZE });
  }
  return plain.slice(2);
}

function recoverSeed(ek: EkKeyPair, encryptedSecret: Uint8Array, hash: TpmHashInfo): Uint8Array {
  const pub = ek.publicArea;
  if (pub.type === TPM_ALG_RSA) {
    try {
      const options = { key: ek.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.nodeName, oaepLabel: IDENTITY_LABEL };
      return new Uint8Array(privateDecrypt(options, encryptedSecret));
    } catch (error) {
      throw new TpmAccessError('credential activation failed: the secret does not decrypt under the EK', { cause: error, responseCode: TPM_RC_VALUE });
    }
  }
  if (pub.type === TPM_ALG_ECC) {
    const curve = curveInfo(pub.parameters.curveId);
    if (curve === undefined) {
      throw new TpmAccessError(`EK curve ${algName(pub.parameters.curveId)} is not supported`);
    }
    // TPM2B_ENCRYPTED_SECRET of an ECC EK holds a TPMS_ECC_POINT: TPM2B x ‖ TPM2B y (Part 2 Table 183).
    const r = new BigEndianReader(encryptedSecret, TpmParseError);
    const x = r.struct('secret.x', () => r.tpm2b(curve.size));
    const y = r.struct('secret.y', () => r.tpm2b(curve.size));
    r.finish();
    let z: Uint8Array;
    try {
      const jwk = { kty: 'EC', crv: curve.jwkName, x: Buffer.from(x).toString('base64url'), y: Buffer.from(y).toString('base64url') };
      z = new Uint8Array(diffieHellman({ privateKey: ek.privateKey, publicKey: createPublicKey({ key: jwk, format: 'jwk' }) }));
    } catch (error) {
      throw new TpmAccessError('credential activation failed: the ephemeral point is not on the EK curve', { cause: error, responseCode: TPM_RC_VALUE });
    }
    return kdfe(hash.algId, z, 'IDENTITY', x, pub.unique.x, hash.digestSize * 8);
  }
  throw new TpmAccessError(`EK type ${algName(pub.type)} cannot activate credentials`);
}
