import { get, type Agent as HttpsAgent } from 'node:https';
import forge from 'node-forge';
import { createCertificateAuthority, issueFromCa } from '../../lib/pki/certificate-authority.js';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import { buildCertificate, generateRsaKeyPair, parseCertificateAndKey, toPems, type CertificateAndKey } from '../../lib/pki/x509-builder.js';

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

/**
 * A clientAuth certificate from `ca` that ends `lifetimeMs` after it is made (rounded up to whole seconds,
 * as X.509 dates are): counted from after the key generation, which a loaded machine may take a while over.
 */
export function clientCertificateEnding(ca: CertificateAndKey, lifetimeMs: number): CertificateAndKey & { notAfterMs: number } {
  const keys = generateRsaKeyPair();
  const notAfterMs = Date.now() + lifetimeMs;
  const issuer = parseCertificateAndKey(ca, 'CA');
  const extensions = [{ name: 'basicConstraints', cA: false, critical: true }, { name: 'extKeyUsage', clientAuth: true }];
  const cert = buildCertificate(keys, { commonName: 'tenant', validityDays: 1, extensions, issuer });
  cert.validity.notAfter = new Date(Math.ceil(notAfterMs / 1000) * 1000);
  cert.sign(issuer.key, forge.md.sha256.create());
  return { ...toPems(cert, keys.privateKey), notAfterMs: cert.validity.notAfter.getTime() };
}

/** One GET through `agent`: its status, body, and whether it went over a connection opened before. */
export function getOn(agent: HttpsAgent, url: string): Promise<{ status: number | undefined; body: string; reusedSocket: boolean }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode, body, reusedSocket: request.reusedSocket }));
    });
    request.on('error', reject);
  });
}
