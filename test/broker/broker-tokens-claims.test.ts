import { execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { decodeJwt, SignJWT, type JWTPayload } from 'jose';
import { InvalidConfig } from '../../interfaces/errors.js';
import { TOKEN_CLOCK_SKEW_SECONDS } from '../../lib/broker/ear-token-verifier.js';
import { loadTrustedIssuer } from '../../lib/broker/trusted-issuers.js';
import { KbsClientBuilder } from '../../lib/kbs-client/kbs-client-builder.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { TpmEvidenceProvider } from '../../lib/kbs-client/tpm-evidence-provider.js';
import { softwareTestNode, startTestBroker, type TestBroker, type TestNode } from './helpers/broker-fixture.js';
import { expectRefused } from './helpers/kbs-refusals.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const AUDIENCE = 'rack7-brokers';
const RESOURCE = { repository: 'node', type: 'join', tag: 'rack7' };
const RESOURCE_ROUTE = '/kbs/v0/resource/node/join/rack7';

/** A self-signed X.509 certificate of `key` (openssl), as a PEM file in `dir`. */
function certificateOf(key: KeyObject, dir: string, name: string): string {
  const keyFile = path.join(dir, `${name}.key.pem`);
  const certFile = path.join(dir, `${name}.cert.pem`);
  writeFileSync(keyFile, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  execFileSync('openssl', ['req', '-new', '-x509', '-key', keyFile, '-subj', `/CN=${name}`, '-days', '1', '-out', certFile], { stdio: 'pipe' });
  return certFile;
}

/**
 * Passport tokens against brokers that trust issuer A, all requiring `aud` = AUDIENCE: B trusts A by
 * its JWKS, C by a PEM certificate of A's token key, D by a certificate of another key. Tokens are
 * A's real ones, or A's claims re-signed with A's own key with one claim changed, so each refusal is
 * that claim's (401 TokenVerifierError).
 */
describe('broker: token claims (aud, nbf) and issuers trusted by certificate', function () {
  this.timeout(60_000);
  let issuerA: TestBroker;
  let brokerB: TestBroker;
  let brokerC: TestBroker;
  let brokerD: TestBroker;
  let node: TestNode;
  let certDir: string;
  let keyA: KeyObject;
  let realClaims: JWTPayload;
  let realToken: string;
  const secret = new Uint8Array(Buffer.from('join token of rack7'));

  /** A's claims with `changes`, signed ES256 with A's token key. */
  function signedByA(changes: JWTPayload): Promise<string> {
    return new SignJWT({ ...realClaims, ...changes }).setProtectedHeader({ alg: 'ES256' }).sign(keyA);
  }

  async function fetchWith(broker: TestBroker, token: string): Promise<unknown> {
    const http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    try {
      return (await http.send('GET', RESOURCE_ROUTE, { headers: { authorization: `Bearer ${token}` } })).body;
    } finally {
      await http.close();
    }
  }

  before(async function () {
    certDir = await mkdtemp(path.join(tmpdir(), 'ironlime-broker-certs-'));
    node = await softwareTestNode();
    issuerA = await startTestBroker({ issuer: 'issuer-a', audience: AUDIENCE });
    keyA = createPrivateKey(await readFile(path.join(issuerA.dataDir, 'broker', 'token-signing-key.pem'), 'utf8'));
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const certA = certificateOf(keyA, certDir, 'issuer-a');
    const certOther = certificateOf(otherKey, certDir, 'other');
    brokerB = await startTestBroker({ issuer: 'broker-b', audience: AUDIENCE, trustIssuers: [issuerA.running.jwksPath] });
    brokerC = await startTestBroker({ issuer: 'broker-c', audience: AUDIENCE, trustIssuers: [`issuer-a=${certA}`] });
    brokerD = await startTestBroker({ issuer: 'broker-d', audience: AUDIENCE, trustIssuers: [`issuer-a=${certOther}`] });
    await issuerA.admin.putNode(node.agentId, { akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy(), mbRefstate: await node.refstate() });
    for (const broker of [brokerB, brokerC, brokerD]) {
      await broker.admin.putNode(node.agentId, { groups: ['rack7'] });
      await broker.admin.putResource(RESOURCE, secret, { groups: ['rack7'] });
    }
    const built = new KbsClientBuilder(brokerB.running.url)
      .ca(brokerB.running.caCert)
      .mode('passport')
      .issuer(issuerA.running.url, issuerA.running.caCert)
      .evidenceProvider(
        new TpmEvidenceProvider({ tpm: node.tpm, agentId: node.agentId, imaLogPath: node.emulated.imaLogPath, bootLogPath: node.emulated.bootLogPath }),
      )
      .build();
    try {
      realToken = await built.client.token();
      expect(await built.client.getResource('kbs:///node/join/rack7'), 'passport fetch at B').to.deep.equal(secret);
    } finally {
      await built.close();
    }
    realClaims = decodeJwt(realToken);
  });

  after(async function () {
    for (const broker of [brokerD, brokerC, brokerB, issuerA]) {
      await broker?.dispose();
    }
    await node?.dispose();
    await rm(certDir, { recursive: true, force: true });
  });

  it("A's token carries the configured aud and is accepted at B (control)", async function () {
    expect(realClaims.aud).to.equal(AUDIENCE);
    expect(await fetchWith(brokerB, realToken)).to.have.property('ciphertext');
    expect(await fetchWith(brokerB, await signedByA({})), 're-signed unchanged').to.have.property('ciphertext');
  });

  it('a token for another audience, or with no aud, is 401 TokenVerifierError', async function () {
    const other = await expectRefused(fetchWith(brokerB, await signedByA({ aud: 'rack9-brokers' })), 401, 'TokenVerifierError', 'aud mismatch');
    expect(other).to.equal('token refused: claim aud check_failed');
    const { aud: _dropped, ...withoutAud } = realClaims;
    const missing = await new SignJWT(withoutAud).setProtectedHeader({ alg: 'ES256' }).sign(keyA);
    const absent = await expectRefused(fetchWith(brokerB, missing), 401, 'TokenVerifierError', 'no aud');
    expect(absent).to.match(/^token refused: claim aud /);
  });

  it('a token not valid before a time beyond the clock skew is 401 TokenVerifierError; within the skew it is accepted', async function () {
    const now = Math.floor(Date.now() / 1000);
    const future = await expectRefused(
      fetchWith(brokerB, await signedByA({ nbf: now + TOKEN_CLOCK_SKEW_SECONDS + 60 })),
      401,
      'TokenVerifierError',
      'future nbf',
    );
    expect(future).to.equal('token refused: claim nbf check_failed');
    expect(await fetchWith(brokerB, await signedByA({ nbf: now + TOKEN_CLOCK_SKEW_SECONDS - 20 })), 'nbf within skew').to.have.property('ciphertext');
  });

  it("--trust-issuer with a PEM certificate of A's key: C releases against A's token", async function () {
    expect(await fetchWith(brokerC, realToken)).to.have.property('ciphertext');
    const forged = await new SignJWT(realClaims).setProtectedHeader({ alg: 'ES256' }).sign(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const detail = await expectRefused(fetchWith(brokerC, forged), 401, 'TokenVerifierError', 'forged at C');
    expect(detail).to.equal('token refused: bad signature');
  });

  it("--trust-issuer with a certificate of another key: D refuses A's token (401 TokenVerifierError)", async function () {
    const detail = await expectRefused(fetchWith(brokerD, realToken), 401, 'TokenVerifierError', 'cert of another key');
    expect(detail).to.equal('token refused: bad signature');
  });

  it('--trust-issuer values that are no usable certificate are refused when loaded (as at start-up)', async function () {
    const certA = path.join(certDir, 'issuer-a.cert.pem');
    const rsaCert = certificateOf(newRsaKeyPairSync().privateKey, certDir, 'rsa');
    const garbled = path.join(certDir, 'garbled.pem');
    await writeFile(garbled, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
    const truncated = path.join(certDir, 'truncated.pem');
    await writeFile(truncated, (await readFile(certA, 'utf8')).slice(0, 200));
    const cases: [string, string, RegExp][] = [
      ['no issuer name', certA, /name the issuer/],
      ['RSA key', `issuer-a=${rsaCert}`, /no EC P-256/],
      ['garbled body', `issuer-a=${garbled}`, /not a PEM certificate/],
      ['truncated', `issuer-a=${truncated}`, /not a PEM certificate/],
    ];
    for (const [what, spec, message] of cases) {
      const error = await loadTrustedIssuer(spec).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error, what).to.be.instanceOf(InvalidConfig);
      expect((error as Error).message, what).to.match(message);
    }
    expect((await loadTrustedIssuer(`issuer-a=${certA}`)).issuer, 'the good certificate loads').to.equal('issuer-a');
  });
});
