import { createCertificateAuthority, issueFromCa } from '../../lib/pki/certificate-authority.js';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import type { CertificateAndKey } from '../../lib/pki/x509-builder.js';

/** Certificates shared by the HTTP tests (RSA key generation is the slow part, so it happens once). */
export interface TlsFixture {
  readonly ca: CertificateAndKey;
  readonly otherCa: CertificateAndKey;
  readonly server: CertificateAndKey;
  readonly client: CertificateAndKey;
  /** A client certificate from `otherCa`. */
  readonly foreignClient: CertificateAndKey;
  /** Two self-signed agent server certificates with the same CN. */
  readonly agent: CertificateAndKey;
  readonly otherAgent: CertificateAndKey;
}

let fixture: TlsFixture | undefined;

export function tlsFixture(): TlsFixture {
  if (fixture === undefined) {
    const ca = createCertificateAuthority();
    const otherCa = createCertificateAuthority({ commonName: 'other CA' });
    const agentId = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000';
    fixture = {
      ca,
      otherCa,
      server: issueFromCa(ca, { commonName: 'verifier', type: 'server' }),
      client: issueFromCa(ca, { commonName: 'tenant', type: 'client' }),
      foreignClient: issueFromCa(otherCa, { commonName: 'tenant', type: 'client' }),
      agent: createSelfSignedServerCertificate({ commonName: agentId }),
      otherAgent: createSelfSignedServerCertificate({ commonName: agentId }),
    };
  }
  return fixture;
}
