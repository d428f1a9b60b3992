import { get } from 'node:https';
import { expect } from 'chai';
import forge from 'node-forge';
import { loadCa } from '../../lib/pki/ca-directory.js';
import { caDirOf } from '../../lib/pki/service-tls.js';
import { buildCertificate, generateRsaKeyPair, parseCertificateAndKey, toPems, type CertificateAndKey } from '../../lib/pki/x509-builder.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';

/** A clientAuth certificate from the CA in `caDir` that ends `lifetimeMs` after its key is made (rounded up to whole seconds). */
async function clientCertificateEnding(caDir: string, lifetimeMs: number): Promise<CertificateAndKey & { notAfterMs: number }> {
  const issuer = parseCertificateAndKey(await loadCa(caDir), 'CA');
  const keys = generateRsaKeyPair();
  const notAfterMs = Date.now() + lifetimeMs;
  const extensions = [{ name: 'basicConstraints', cA: false, critical: true }, { name: 'extKeyUsage', clientAuth: true }];
  const cert = buildCertificate(keys, { commonName: 'operator', validityDays: 1, extensions, issuer });
  cert.validity.notAfter = new Date(Math.ceil(notAfterMs / 1000) * 1000);
  cert.sign(issuer.key, forge.md.sha256.create());
  return { ...toPems(cert, keys.privateKey), notAfterMs: cert.validity.notAfter.getTime() };
}

describe('dashboard: a live view opened with a client certificate', function () {
  this.timeout(60_000);
  const suite = verifierPerSuite('ironlime-dash-cert-expiry-');

  it('ends when the certificate expires, as a token-held one does when its token does', async () => {
    const caDir = caDirOf(suite.dataDir);
    const ca = await loadCa(caDir);
    // 6 s to sign, connect and be streaming: a host that stalls for a few seconds refused a 3 s one at the handshake.
    const expiring = await clientCertificateEnding(caDir, 6000);
    const ended = await new Promise<number>((resolve, reject) => {
      const request = get(
        `${suite.verifier.url}/dashboard/events`,
        { ca: ca.certPem, cert: expiring.certPem, key: expiring.keyPem, agent: false },
        (response) => {
          expect(response.statusCode).to.equal(200);
          response.resume();
          response.on('end', () => resolve(Date.now()));
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      // Still streaming long after the certificate ended (a stall delays the end, never brings it forward): give up reading.
      setTimeout(() => {
        request.destroy();
        resolve(Number.POSITIVE_INFINITY);
      }, Math.max(0, expiring.notAfterMs - Date.now()) + 30_000);
    });
    expect(ended, 'the stream ended after the certificate did').to.be.within(expiring.notAfterMs, expiring.notAfterMs + 20_000);
  });
});
