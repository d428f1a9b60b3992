import type { KeyObject } from 'node:crypto';
import { IronlimeError } from '../../interfaces/errors.js';
import { isPemCertificate } from '../pki/pem-certificate.js';
import { TPMA_OBJECT_DECRYPT, TPMA_OBJECT_RESTRICTED } from '../tpm/constants.js';
import { checkAkAttributes } from '../tpm/ak-attributes.js';
import { tpmKeyWeakness } from '../tpm/weak-tpm-key.js';
import { certificateHoldsKey } from '../tpm/ek-certificate.js';
import { tpmObjectName } from '../tpm/object-name.js';
import { CertificateParseError } from '../tpm/tpm-errors.js';
import { parseTpm2bPublic, type TpmtPublic } from '../tpm/tpmt-public.js';
import { publicKeyFromTpmtPublic } from '../tpm/tpmt-public-key.js';
import { splitEkCertificateField } from './ek-certificate-field.js';
import { ekKeyHash } from './ek-key-hash.js';
import type { RegisterAgentBody } from './registrar-dtos.js';
import { InvalidAgentData } from './registrar-errors.js';

/** A registration body whose TPM objects parsed and passed every check that needs no trust store. */
export interface CheckedRegistration {
  /** Canonical base64 of the EK TPM2B_PUBLIC (what is stored and compared on re-registration). */
  readonly ekTpm: string;
  readonly ekPublic: TpmtPublic;
  /** sha256 of the EK public key, what the per-EK limit counts (`ekKeyHash`). */
  readonly ekKeyHash: string;
  /** The certificate holding the EK public key, DER; null when the agent sent none. */
  readonly ekCertDer: Uint8Array | null;
  /** The other certificates sent with it (intermediates of a PEM chain), DER. */
  readonly ekCertChain: readonly Uint8Array[];
  readonly aikTpm: string;
  readonly akName: Uint8Array;
  readonly ip: string | null;
  readonly port: number | null;
  readonly mtlsCert: string | null;
}

/**
 * Parses and checks the TPM objects of a registration (spec §1.3), stricter than Keylime:
 * - `aik_tpm` must be an RSA/ECC TPM2B_PUBLIC with restricted-signing-key attributes (the removed
 *   legacy registrar's `AK_EXPECTED_ATTRS`; §1.3 last note) → 400 "Invalid AK attributes";
 * - `ek_tpm` must be an RSA/ECC restricted decryption key (TPM2_ActivateCredential needs one);
 * - neither key may be an RSA key under 2048 bits or one with the ROCA fingerprint (`tpmKeyWeakness`);
 * - the EK public key must equal the key of the EK certificate (Keylime `_check_key_against_cert`);
 *   with a PEM chain, the certificate holding that key is the EK certificate, the rest intermediates;
 * - `mtls_cert` must be "disabled" or a PEM certificate.
 * Does NOT judge the EK certificate's issuer: that is `EkTrust`'s job.
 *
 * @throws InvalidAgentData naming the body field.
 */
export function checkRegistration(body: RegisterAgentBody): CheckedRegistration {
  const ekBytes = Buffer.from(body.ek_tpm, 'base64');
  const ekPublic = parseField('ek_tpm', ekBytes);
  const ekHash = fieldStep('ek_tpm', () => ekKeyHash(ekPublic));
  const decryptBits = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  if ((ekPublic.objectAttributes & decryptBits) !== decryptBits) {
    throw new InvalidAgentData('ek_tpm', 'the EK must be a restricted decryption key');
  }
  const ekWeakness = tpmKeyWeakness(ekPublic);
  if (ekWeakness !== null) throw new InvalidAgentData('ek_tpm', `the EK ${ekWeakness}`);

  const akBytes = Buffer.from(body.aik_tpm, 'base64');
  const akPublic = parseField('aik_tpm', akBytes);
  fieldStep('aik_tpm', () => publicKeyFromTpmtPublic(akPublic));
  const problems = checkAkAttributes(akPublic);
  if (problems.length > 0) {
    throw new InvalidAgentData('aik_tpm', `Invalid AK attributes: ${problems.join('; ')}`);
  }
  const akWeakness = tpmKeyWeakness(akPublic);
  if (akWeakness !== null) throw new InvalidAgentData('aik_tpm', `the AK ${akWeakness}`);
  const akName = fieldStep('aik_tpm', () => tpmObjectName(akPublic));

  let ekCertDer: Uint8Array | null = null;
  let ekCertChain: Uint8Array[] = [];
  // Absent and JSON null are the same: the agent sent no EK certificate.
  if (body.ekcert !== undefined && body.ekcert !== null) {
    const certs = splitEkCertificateField(body.ekcert);
    const index = ekCertificateIndex(fieldStep('ek_tpm', () => publicKeyFromTpmtPublic(ekPublic)), certs);
    ekCertDer = certs[index] ?? null;
    ekCertChain = certs.filter((_, i) => i !== index);
  }

  return {
    ekTpm: ekBytes.toString('base64'),
    ekPublic,
    ekKeyHash: ekHash,
    ekCertDer,
    ekCertChain,
    aikTpm: akBytes.toString('base64'),
    akName,
    ip: body.ip ?? null,
    port: body.port ?? null,
    mtlsCert: checkMtlsCert(body.mtls_cert),
  };
}

/**
 * Which of the sent certificates holds the EK public key. One that cannot be read is passed over
 * wherever it stands in the chain, so that `EkTrust` judges it under the ek-check mode; only when no
 * certificate holds the key is the first read failure the answer (400 naming `ekcert`).
 *
 * @throws InvalidAgentData
 */
function ekCertificateIndex(ekKey: KeyObject, certs: readonly Uint8Array[]): number {
  let unreadable: InvalidAgentData | undefined;
  for (const [index, der] of certs.entries()) {
    try {
      if (fieldStep('ekcert', () => certificateHoldsKey(der, ekKey))) {
        return index;
      }
    } catch (error) {
      if (!(error instanceof InvalidAgentData && error.cause instanceof CertificateParseError)) {
        throw error;
      }
      unreadable ??= error;
    }
  }
  throw unreadable ?? new InvalidAgentData('ek_tpm', 'must contain the same public key found in ekcert');
}

function parseField(field: string, bytes: Uint8Array): TpmtPublic {
  return fieldStep(field, () => parseTpm2bPublic(bytes));
}

/** Runs a lib/tpm step and names the body field in any typed error it throws. */
function fieldStep<T>(field: string, step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (error instanceof IronlimeError) {
      throw new InvalidAgentData(field, error.message, { cause: error });
    }
    throw error;
  }
}

/** `mtls_cert`: absent, "disabled" or a readable PEM certificate. @throws InvalidAgentData */
export function checkMtlsCert(text: string | null | undefined): string | null {
  if (text === undefined || text === null) {
    return null;
  }
  if (text === 'disabled') {
    return text;
  }
  if (!isPemCertificate(text)) {
    throw new InvalidAgentData('mtls_cert', 'is not a readable PEM certificate');
  }
  return text;
}
