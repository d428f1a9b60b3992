import { toAltNames } from './subject-alt-names.js';
import {
  buildCertificate,
  generateRsaKeyPair,
  subjectAltNameExtension,
  toPems,
  type CertificateAndKey,
} from './x509-builder.js';

export interface SelfSignedServerOptions {
  /** Keylime agents use their agent UUID. */
  readonly commonName: string;
  /** DNS names and IP addresses the agent is reached at; localhost and 127.0.0.1 are always added. */
  readonly sans?: readonly string[];
  /** Default 365 days. */
  readonly validityDays?: number;
}

/**
 * Creates the self-signed server certificate a pull agent serves HTTPS with. It is not a CA: peers
 * trust it only by pinning it (the registrar stores it as the agent's `mtls_cert`; the verifier and the
 * tenant accept exactly that certificate), as the Rust keylime-agent's certificate is used.
 */
export function createSelfSignedServerCertificate(options: SelfSignedServerOptions): CertificateAndKey {
  const keys = generateRsaKeyPair();
  const altNames = toAltNames([...(options.sans ?? []), 'localhost', '127.0.0.1']);
  const cert = buildCertificate(keys, {
    commonName: options.commonName,
    validityDays: options.validityDays ?? 365,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      subjectAltNameExtension(altNames),
    ],
  });
  return toPems(cert, keys.privateKey);
}
