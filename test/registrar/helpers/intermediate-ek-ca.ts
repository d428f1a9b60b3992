import forge from 'node-forge';
import { SoftwareEkCa } from '../../../lib/tpm-access/software/ek-certificate.js';
import { newRsaKeyPairSync } from '../../../lib/pki/rsa-key-source.js';

/**
 * An EK CA under `root`, as TPM vendors issue EK certificates (root → intermediate → EK): a CA
 * certificate for a fresh key, signed by the root, returned as a `SoftwareEkCa` with its PEM.
 */
export function intermediateEkCa(root: SoftwareEkCa, commonName: string): SoftwareEkCa {
  const keys = newRsaKeyPairSync();
  const keyPem = keys.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const rootCert = forge.pki.certificateFromPem(root.certificatePem);
  const cert = forge.pki.createCertificate();
  cert.serialNumber = '02';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 365 * 86_400_000);
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(rootCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(root.privateKeyPem), forge.md.sha256.create());
  return SoftwareEkCa.fromPem(forge.pki.certificateToPem(cert), keyPem);
}
