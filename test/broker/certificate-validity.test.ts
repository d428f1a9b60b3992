import { execFileSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import forge from 'node-forge';
import { SignJWT } from 'jose';
import { InvalidConfig } from '../../interfaces/errors.js';
import { EarTokenVerifier } from '../../lib/broker/ear-token-verifier.js';
import { KbsError } from '../../lib/broker/kbs-errors.js';
import { loadTrustedIssuer } from '../../lib/broker/trusted-issuers.js';
import { TeeKeyPair } from '../../lib/kbs-client/tee-key-pair.js';
import { signRevocation, type RevocationMessage } from '../../lib/revocation/revocation-message.js';
import { checkRevocationEnvelope, revocationVerifyKey } from '../../lib/revocation/revocation-signature.js';
import { generateRsaKeyPair } from '../../lib/pki/x509-builder.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** A self-signed RSA certificate (node-forge) valid from `notBefore` to `notAfter`, and its key, PEM. */
function forgeCertificate(notBefore: Date, notAfter: Date): { certPem: string; keyPem: string } {
  const keys = generateRsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '01';
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: 'revocation' }]);
  cert.setIssuer([{ name: 'commonName', value: 'revocation' }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

const MESSAGE: RevocationMessage = {
  type: 'revocation', ip: null, agent_id: '6f0c1e2a-8b4d-4c9e-a1f3-5d7b9e2c4a60', port: null, tpm_policy: '{}', meta_data: '{}',
  event_time: 'Sat Dec  5 17:00:00 2026', event_id: 'e', severity_label: 'emergency', context: '{}',
};

describe('certificate validity of trusted keys (--revocation-cert, --trust-issuer)', function () {
  this.timeout(30_000);

  describe('--revocation-cert', function () {
    it('an expired or not yet valid certificate is refused when loaded, naming the date', function () {
      const now = Date.now();
      const expired = forgeCertificate(new Date(now - 10 * DAY_MS), new Date(now - DAY_MS));
      const future = forgeCertificate(new Date(now + DAY_MS), new Date(now + 10 * DAY_MS));
      for (const [pem, reason] of [[expired.certPem, /revocation certificate is expired on \d{4}-/], [future.certPem, /revocation certificate is not valid before \d{4}-/]] as const) {
        expect(() => revocationVerifyKey(pem)).to.throw(InvalidConfig, reason);
      }
    });

    it('a certificate valid at load stops being trusted once it expires', function () {
      const now = Date.now();
      const { certPem, keyPem } = forgeCertificate(new Date(now - DAY_MS), new Date(now + DAY_MS));
      const key = revocationVerifyKey(certPem);
      const envelope = signRevocation(MESSAGE, keyPem);
      expect(checkRevocationEnvelope(envelope, key).ok).to.equal(true);
      const later = checkRevocationEnvelope(envelope, key, now + 2 * DAY_MS);
      expect(later.ok).to.equal(false);
      expect(later.ok ? '' : later.reason).to.match(/^the revocation certificate is expired on .*: no message is trusted$/);
    });
  });

  describe('--trust-issuer with a PEM certificate', function () {
    let dir: string;
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

    before(function () {
      dir = mkdtempSync(path.join(tmpdir(), 'ironlime-cert-validity-'));
    });

    after(function () {
      rmSync(dir, { recursive: true, force: true });
    });

    /** A one-day self-signed certificate of the P-256 key (openssl: node-forge signs only with RSA). */
    function issuerCertificate(): string {
      const keyFile = path.join(dir, 'issuer.key.pem');
      const certFile = path.join(dir, 'issuer.cert.pem');
      writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      execFileSync('openssl', ['req', '-new', '-x509', '-key', keyFile, '-subj', '/CN=issuer-a', '-days', '1', '-out', certFile], { stdio: 'pipe' });
      return certFile;
    }

    it('refused when loaded outside its validity, with a clear error', async function () {
      const file = issuerCertificate();
      const now = Date.now();
      for (const [at, reason] of [[now + 2 * DAY_MS, /certificate is expired on/], [now - DAY_MS, /certificate is not valid before/]] as const) {
        const error = await loadTrustedIssuer(`issuer-a=${file}`, at).then(() => undefined, (e: unknown) => e);
        expect(error).to.be.instanceOf(InvalidConfig);
        expect((error as Error).message).to.match(reason).and.to.contain(file);
      }
    });

    it('reads a certificate file with text around its block (openssl x509 -text); refuses a chain, saying so', async function () {
      const file = issuerCertificate();
      const withText = path.join(dir, 'issuer.text.pem');
      writeFileSync(withText, execFileSync('openssl', ['x509', '-in', file, '-text'], { encoding: 'utf8' }));
      const issuer = await loadTrustedIssuer(`issuer-a=${withText}`);
      expect(issuer.keys[0]?.export({ format: 'jwk' })).to.deep.equal(createPublicKey(privateKey).export({ format: 'jwk' }));
      const chain = path.join(dir, 'issuer.chain.pem');
      writeFileSync(chain, readFileSync(file, 'utf8').repeat(2));
      const error = await loadTrustedIssuer(`issuer-a=${chain}`).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(InvalidConfig);
      expect((error as Error).message).to.equal(`invalid config: broker.trustIssuers: ${chain}: holds 2 certificates; give the issuer's certificate alone`);
    });

    it("the issuer's tokens are refused once the certificate expires, also a token verified (cached) before", async function () {
      const issuer = await loadTrustedIssuer(`issuer-a=${issuerCertificate()}`);
      const verifier = new EarTokenVerifier({ issuers: [issuer], maxLifetimeSeconds: 10 * 86_400 });
      const nowSeconds = Math.floor(Date.now() / 1000);
      const teePubkey = (await TeeKeyPair.generate('ec')).publicJwk;
      const submods = { cpu0: { 'ear.status': 'affirming', 'ear.veraison.annotated-evidence': { runtime_data_claims: { 'tee-pubkey': teePubkey } } } };
      const token = await new SignJWT({ submods })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer('issuer-a')
        .setSubject('6f0c1e2a-8b4d-4c9e-a1f3-5d7b9e2c4a60')
        .setIssuedAt(nowSeconds)
        .setNotBefore(nowSeconds)
        .setExpirationTime(nowSeconds + 5 * 86_400)
        .sign(privateKey);
      expect((await verifier.verify(token, nowSeconds)).agentId).to.equal('6f0c1e2a-8b4d-4c9e-a1f3-5d7b9e2c4a60');
      const later = await verifier.verify(token, nowSeconds + 2 * 86_400).then(() => undefined, (e: unknown) => e);
      expect(later).to.be.instanceOf(KbsError);
      expect((later as KbsError).message).to.match(/token issuer issuer-a is no longer trusted: its certificate is expired on /);
    });
  });
});
