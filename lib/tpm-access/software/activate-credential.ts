import { constants, createHmac, createPublicKey, diffieHellman, privateDecrypt, type KeyObject } from 'node:crypto';
import { BigEndianReader } from '../../bytes/byte-reader.js';
import { TpmParseError } from '../../bytes/parse-errors.js';
import { TPM_ALG_RSA, curveInfo } from '../../tpm/constants.js';
import { parseCredentialBlob } from '../../tpm/credential-blob.js';
import { kdfa, kdfe } from '../../tpm/kdf.js';
import { aesCfb, credentialProtection, IDENTITY_LABEL } from '../../tpm/make-credential.js';
import { CredentialActivationError, TpmKeyError } from '../../tpm/tpm-errors.js';
import { parsePublicArea, type EccPublicArea, type TpmtPublic } from '../../tpm/tpmt-public.js';
import { bytesEqual } from '../../bytes/bytes-equal.js';

export interface ActivateCredentialInput {
  /** The EK's private key (a software TPM holds it; a real TPM never releases it). */
  readonly ekPrivateKey: KeyObject;
  /** EK public area: TPM2B_PUBLIC or TPMT_PUBLIC bytes, or parsed. */
  readonly ekPublic: Uint8Array | TpmtPublic;
  /** Name of the key the credential must be bound to (the AK). */
  readonly akName: Uint8Array;
  /** The tpm2-tools credential file from `makeCredential` or a Keylime registrar. */
  readonly blob: Uint8Array;
}

/**
 * TPM2_ActivateCredential in software (TPM 2.0 Part 3 §12.5), for the in-process software TPM and for
 * tests: recovers the seed with the EK private key, checks the outer HMAC over encIdentity ‖ akName
 * in constant time, then decrypts the credential. A real TPM additionally requires the EK policy
 * session and AK authorisation; that is the caller's business. Throws `TpmParseError` for a malformed
 * blob, `TpmKeyError` for an unusable EK, and `CredentialActivationError` — one uniform failure — when
 * the blob was not made for this EK and AK or was altered; its `step` says which check refused it.
 */
export function activateCredential(input: ActivateCredentialInput): Uint8Array {
  const ek = input.ekPublic instanceof Uint8Array ? parsePublicArea(input.ekPublic) : input.ekPublic;
  const { hash, aesBits } = credentialProtection(ek);
  const blob = parseCredentialBlob(input.blob);
  let seed: Uint8Array;
  try {
    seed = ek.type === TPM_ALG_RSA
      ? new Uint8Array(privateDecrypt(
        { key: input.ekPrivateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.nodeName, oaepLabel: IDENTITY_LABEL },
        blob.encryptedSecret,
      ))
      : eccSeed(input.ekPrivateKey, ek as EccPublicArea, hash.algId, hash.digestSize, blob.encryptedSecret);
  } catch (error) {
    if (error instanceof TpmKeyError) {
      throw error;
    }
    throw new CredentialActivationError('secret', { cause: error });
  }
  const hmacKey = kdfa(hash.algId, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), hash.digestSize * 8);
  const expected = createHmac(hash.nodeName, hmacKey).update(blob.encIdentity).update(input.akName).digest();
  if (!bytesEqual(expected, blob.integrityHmac)) {
    throw new CredentialActivationError('integrity');
  }
  const symKey = kdfa(hash.algId, seed, 'STORAGE', input.akName, new Uint8Array(0), aesBits);
  const plain = new BigEndianReader(aesCfb(symKey, blob.encIdentity, true), TpmParseError);
  try {
    const secret = plain.tpm2b(hash.digestSize);
    plain.finish();
    return secret;
  } catch (error) {
    throw new CredentialActivationError('credential', { cause: error });
  }
}

/** Seed of an ECC-protected credential: ECDH(EK, ephemeral point) then KDFe("IDENTITY") (Part 1 §24.4). */
function eccSeed(ekPrivate: KeyObject, ek: EccPublicArea, hashAlg: number, digestSize: number, point: Uint8Array): Uint8Array {
  const curve = curveInfo(ek.parameters.curveId);
  if (curve === undefined) {
    throw new TpmKeyError(`EK curve 0x${ek.parameters.curveId.toString(16)} is not supported`);
  }
  // TPM2B_ENCRYPTED_SECRET of an ECC EK holds a TPMS_ECC_POINT: TPM2B x ‖ TPM2B y (Part 2 Table 183).
  const r = new BigEndianReader(point, TpmParseError);
  const x = r.struct('secret.x', () => r.tpm2b(curve.size));
  const y = r.struct('secret.y', () => r.tpm2b(curve.size));
  r.finish();
  const ephemeral = createPublicKey({
    key: { kty: 'EC', crv: curve.jwkName, x: Buffer.from(x).toString('base64url'), y: Buffer.from(y).toString('base64url') },
    format: 'jwk',
  });
  const z = new Uint8Array(diffieHellman({ privateKey: ekPrivate, publicKey: ephemeral }));
  return kdfe(hashAlg, z, 'IDENTITY', x, ek.unique.x, digestSize * 8);
}
