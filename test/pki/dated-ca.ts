import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import forge from 'node-forge';
import { CA_CERT_FILE, CA_KEY_FILE } from '../../lib/pki/ca-directory.js';
import { createCertificateAuthority } from '../../lib/pki/certificate-authority.js';
import { buildCertificate, generateRsaKeyPair, parseCertificateAndKey, toPems, type CertificateAndKey } from '../../lib/pki/x509-builder.js';

export const DAY_MS = 86_400_000;

/** A CA certificate and key valid from `fromMs` to `toMs` (Unix ms): a new CA, dated so and signed again. */
export function datedCa(fromMs: number, toMs: number): CertificateAndKey {
  const { cert, key } = parseCertificateAndKey(createCertificateAuthority({ commonName: 'dated CA' }), 'CA');
  cert.validity.notBefore = new Date(fromMs);
  cert.validity.notAfter = new Date(toMs);
  cert.sign(key, forge.md.sha256.create());
  return toPems(cert, key);
}

/** Writes `ca` as a CA folder (`cacert.crt`, `ca-private.pem` mode 0600) in `dir`. */
export async function writeCaFolder(dir: string, ca: CertificateAndKey): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(path.join(dir, CA_CERT_FILE), ca.certPem);
  await writeFile(path.join(dir, CA_KEY_FILE), ca.keyPem, { mode: 0o600 });
  await chmod(path.join(dir, CA_KEY_FILE), 0o600);
}

/** A server certificate from `ca` for `validityDays`, not cut to the CA's end (as issued before leaves were). */
export function uncappedLeaf(ca: CertificateAndKey, validityDays: number): CertificateAndKey {
  const keys = generateRsaKeyPair();
  const cert = buildCertificate(keys, {
    commonName: 'verifier',
    validityDays,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
    ],
    issuer: parseCertificateAndKey(ca, 'CA'),
  });
  return toPems(cert, keys.privateKey);
}

/**
 * A leaf from `ca` shaped as Keylime's CA tool issues them (ca_impl_openssl): no basicConstraints and
 * no extendedKeyUsage, one DNS name; `extKeyUsage` adds that extension (node-forge's form) instead.
 */
export function keylimeStyleLeaf(ca: CertificateAndKey, name: string, extKeyUsage?: Readonly<Record<string, boolean>>): CertificateAndKey {
  const keys = generateRsaKeyPair();
  const cert = buildCertificate(keys, {
    commonName: name,
    validityDays: 365,
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: name }] }, ...(extKeyUsage === undefined ? [] : [{ name: 'extKeyUsage', ...extKeyUsage }])],
    issuer: parseCertificateAndKey(ca, 'CA'),
  });
  return toPems(cert, keys.privateKey);
}
