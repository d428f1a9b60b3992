import { randomBytes, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { newRsaKeyPairSync } from '../../pki/rsa-key-source.js';
import { TpmAccessError } from '../tpm-access-error.js';

/** tcg-kp-EKCertificate (TCG EK Credential Profile 2.0 §3.2.16). */
const TCG_KP_EK_CERTIFICATE = '2.23.133.8.1';

export interface SoftwareEkCaOptions {
  /** Subject CN of the CA (default "ironlime software TPM EK CA"). */
  commonName?: string;
}

/**
 * A throw-away CA that issues EK certificates for software TPMs (node:crypto cannot issue
 * certificates, so this uses node-forge). Put `certificatePem` in a test registrar's EK trust store to
 * have software-TPM nodes pass an EK check; never in a production store. RSA EKs only: node-forge
 * has no EC keys, so an ECC software TPM has no EK certificate.
 */
export class SoftwareEkCa {
  private constructor(
    private readonly certificate: forge.pki.Certificate,
    private readonly privateKey: forge.pki.rsa.PrivateKey,
    /** PEM of the CA certificate. */
    readonly certificatePem: string,
    /** PEM (PKCS#1) of the CA key, to recreate the CA with `fromPem`. */
    readonly privateKeyPem: string,
  ) {}

  /** A new self-signed RSA-2048 CA valid for ten years. */
  static create(options: SoftwareEkCaOptions = {}): SoftwareEkCa {
    const keys = newRsaKeyPairSync();
    const privateKeyPem = keys.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const privateKey = forge.pki.privateKeyFromPem(privateKeyPem);
    const publicKey = forge.pki.publicKeyFromPem(keys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const cert = forge.pki.createCertificate();
    const subject = [
      { name: 'commonName', value: options.commonName ?? 'ironlime software TPM EK CA' },
      { name: 'organizationName', value: 'ironlime' },
    ];
    fillValidity(cert, 10);
    cert.publicKey = publicKey;
    cert.setSubject(subject);
    cert.setIssuer(subject);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(privateKey, forge.md.sha256.create());
    return new SoftwareEkCa(cert, privateKey, forge.pki.certificateToPem(cert), privateKeyPem);
  }

  /** The CA from the PEMs of an earlier `create()`. */
  static fromPem(certificatePem: string, privateKeyPem: string): SoftwareEkCa {
    const cert = forge.pki.certificateFromPem(certificatePem);
    return new SoftwareEkCa(cert, forge.pki.privateKeyFromPem(privateKeyPem), certificatePem, privateKeyPem);
  }

  /**
   * An EK certificate (DER) for `ekPublicKey` as the TCG EK Credential Profile shapes it: end entity,
   * keyEncipherment only, EKU tcg-kp-EKCertificate, issued by this CA, valid for ten years.
   */
  issue(ekPublicKey: KeyObject): Uint8Array {
    if (ekPublicKey.asymmetricKeyType !== 'rsa') {
      throw new TpmAccessError(`the software EK CA issues certificates for RSA EKs only, not ${String(ekPublicKey.asymmetricKeyType)}`);
    }
    const cert = forge.pki.createCertificate();
    fillValidity(cert, 10);
    cert.publicKey = forge.pki.publicKeyFromPem(ekPublicKey.export({ type: 'spki', format: 'pem' }).toString());
    cert.setSubject([{ name: 'commonName', value: 'ironlime software TPM EK' }]);
    cert.setIssuer(this.certificate.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', [TCG_KP_EK_CERTIFICATE]: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(this.privateKey, forge.md.sha256.create());
    const der = forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes();
    return new Uint8Array(Buffer.from(der, 'binary'));
  }
}

/** A random positive serial number, and validity from a day ago (clock skew) for `years`. */
function fillValidity(cert: forge.pki.Certificate, years: number): void {
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 24 * 3600 * 1000);
  cert.validity.notAfter = new Date(now + years * 365 * 24 * 3600 * 1000);
}
