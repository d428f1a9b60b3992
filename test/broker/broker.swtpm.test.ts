import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { decodeJwt, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { main } from '../../lib/cli/main.js';
import { CA_CERT_FILE } from '../../lib/pki/ca-directory.js';
import { caDirOf } from '../../lib/pki/service-tls.js';
import { KbsClientBuilder } from '../../lib/kbs-client/kbs-client-builder.js';
import type { KbsClient } from '../../lib/kbs-client/kbs-client.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { TeeKeyPair } from '../../lib/kbs-client/tee-key-pair.js';
import { TpmEvidenceProvider } from '../../lib/kbs-client/tpm-evidence-provider.js';
import { openTpm2ToolsTpm } from '../../lib/tpm-access/tpm2-tools/tpm-adapter.js';
import { startTestSwtpm, type SwtpmFixture } from '../tpm-access/tpm-test-helpers.js';
import { bootTestNode, brokerReportData, refusal, softwareTestNode, startTestBroker, type TestBroker, type TestNode } from './helpers/broker-fixture.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const DISK_KEY = { repository: 'node', type: 'disk-key', tag: 'u12' };
const DISK_KEY_URI = 'kbs:///node/disk-key/u12';

/**
 * Both KBS models against a real swtpm node (boot log replayed into its PCRs, IMA log extended into
 * PCR 10): broker A appraises evidence and issues EAR tokens (`issuer-a`), broker B trusts A's JWKS
 * and releases resources against tokens alone, broker C is an issuer B does not trust.
 */
describe('broker with a swtpm node: background check and passport', function () {
  this.timeout(180_000);
  let swtpm: SwtpmFixture;
  let node: TestNode;
  let issuerA: TestBroker;
  let brokerB: TestBroker;
  let issuerC: TestBroker;
  const closers: (() => Promise<void>)[] = [];
  const secret = new Uint8Array(randomBytes(32));

  function evidenceOf(of: TestNode, agentId = of.agentId): TpmEvidenceProvider {
    return new TpmEvidenceProvider({ tpm: of.tpm, agentId, imaLogPath: of.emulated.imaLogPath, bootLogPath: of.emulated.bootLogPath });
  }

  function client(broker: TestBroker, options: { issuer?: TestBroker; of?: TestNode } = {}): KbsClient {
    const builder = new KbsClientBuilder(broker.running.url).ca(broker.running.caCert).evidenceProvider(evidenceOf(options.of ?? node));
    if (options.issuer !== undefined) {
      builder.mode('passport').issuer(options.issuer.running.url, options.issuer.running.caCert);
    }
    const built = builder.build();
    closers.push(() => built.close());
    return built.client;
  }

  async function registerNode(broker: TestBroker, withEvidencePolicies: boolean): Promise<void> {
    await broker.admin.putNode(node.agentId, {
      ...(withEvidencePolicies ? { akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy(), mbRefstate: await node.refstate() } : {}),
      groups: ['rack4'],
    });
  }

  async function bearer(broker: TestBroker, token: string): Promise<Uint8Array> {
    const http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    try {
      await http.send('GET', `/kbs/v0/resource/${DISK_KEY.repository}/${DISK_KEY.type}/${DISK_KEY.tag}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return new Uint8Array();
    } finally {
      await http.close();
    }
  }

  before(async function () {
    swtpm = await startTestSwtpm();
    node = await bootTestNode(await openTpm2ToolsTpm({ tcti: swtpm.swtpm.tcti }), { tcti: swtpm.swtpm.tcti });
    issuerA = await startTestBroker({ issuer: 'issuer-a' });
    issuerC = await startTestBroker({ issuer: 'issuer-c' });
    brokerB = await startTestBroker({ issuer: 'broker-b', trustIssuers: [issuerA.running.jwksPath] });
    for (const broker of [issuerA, issuerC]) {
      await registerNode(broker, true);
    }
    await registerNode(brokerB, false);
    for (const broker of [issuerA, brokerB]) {
      await broker.admin.putResource(DISK_KEY, secret, { agents: [node.agentId] });
    }
    await brokerB.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'local-only' }, secret, { groups: ['rack4'], allow_tokens: false });
  });

  after(async function () {
    for (const close of closers) {
      await close();
    }
    for (const broker of [issuerA, brokerB, issuerC]) {
      await broker?.dispose();
    }
    await node?.dispose();
    await swtpm?.cleanup();
  });

  it('background check: the good node gets its disk key', async function () {
    expect(await client(issuerA).getResource(DISK_KEY_URI)).to.deep.equal(secret);
  });

  it('ironlime kbs get-resource fetches the disk key on the node (exit 0) and exits 1 when refused', async function () {
    const output = path.join(node.dir, 'disk.key');
    const args = (uri: string): string[] => [
      'node', 'ironlime', 'kbs', 'get-resource', uri,
      '--url', issuerA.running.url,
      '--ca', path.join(caDirOf(issuerA.dataDir), CA_CERT_FILE),
      '--agent-id', node.agentId,
      '--tcti', swtpm.swtpm.tcti,
      '--ima-log', node.emulated.imaLogPath,
      '--boot-log', node.emulated.bootLogPath,
      '--output', output,
    ];
    expect(await main(args(DISK_KEY_URI))).to.equal(0);
    expect(new Uint8Array(await readFile(output))).to.deep.equal(secret);
    expect(await main(args('kbs:///node/disk-key/absent'))).to.equal(1);
  });

  it('a wrong nonce and a replayed quote are refused', async function () {
    const http = new KbsHttp({ url: issuerA.running.url, ca: issuerA.running.caCert });
    closers.push(() => http.close());
    const key = await TeeKeyPair.generate('ec');
    const session = async (): Promise<{ cookie: string; nonce: string }> => {
      const auth = await http.send('POST', '/kbs/v0/auth', { body: { version: '0.4.0', tee: 'tpm' } });
      return { cookie: String(auth.headers['set-cookie']).split(';')[0] as string, nonce: (auth.body as { nonce: string }).nonce };
    };
    const attest = (cookie: string, runtimeData: object, evidence: object): Promise<unknown> =>
      http.send('POST', '/kbs/v0/attest', { body: { 'runtime-data': runtimeData, 'tee-evidence': { primary_evidence: evidence } }, headers: { cookie } });

    const first = await session();
    const wrongNonce = { nonce: randomBytes(32).toString('base64'), 'tee-pubkey': key.publicJwk };
    const wrong = await refusal(attest(first.cookie, wrongNonce, await evidenceOf(node).primaryEvidence(brokerReportData(wrongNonce))));
    expect([wrong.remoteHttpStatus, wrong.kbsType]).to.deep.equal([401, 'AttestationError']);
    expect(wrong.detail).to.contain('nonce');

    const second = await session();
    const runtimeData = { nonce: second.nonce, 'tee-pubkey': key.publicJwk };
    const evidence = await evidenceOf(node).primaryEvidence(brokerReportData(runtimeData));
    await attest(second.cookie, runtimeData, evidence);
    const again = await refusal(attest(second.cookie, runtimeData, evidence));
    expect(again.detail).to.contain('already attested');

    const third = await session();
    const replayed = await refusal(attest(third.cookie, { nonce: third.nonce, 'tee-pubkey': key.publicJwk }, evidence));
    expect(replayed.detail).to.contain('qoute_validation.quote_validation');
  });

  it('another TPM\'s quote is refused', async function () {
    const other = await softwareTestNode(node.agentId);
    try {
      const error = await refusal(client(issuerA, { of: other }).getResource(DISK_KEY_URI));
      expect(error.detail).to.contain('qoute_validation.quote_validation');
    } finally {
      await other.dispose();
    }
  });

  it('passport: B releases the disk key against A\'s token alone, not a background-only resource', async function () {
    const passport = client(brokerB, { issuer: issuerA });
    expect(await passport.getResource(DISK_KEY_URI)).to.deep.equal(secret);
    const token = decodeJwt(await passport.token());
    expect(token.iss).to.equal('issuer-a');
    expect(token.sub).to.equal(node.agentId);
    const submod = (token['submods'] as Record<string, Record<string, unknown>>)['cpu0'] as Record<string, unknown>;
    expect(submod['ear.status']).to.equal('affirming');
    const denied = await refusal(passport.getResource('kbs:///node/disk-key/local-only'));
    expect(denied.kbsType).to.equal('PolicyDeny');
  });

  it('B refuses expired, forged, none, HS256/RS256 and untrusted-issuer tokens', async function () {
    const real = decodeJwt(await client(brokerB, { issuer: issuerA }).token());
    const keyA = createPrivateKey(await readFile(path.join(issuerA.dataDir, 'broker', 'token-signing-key.pem'), 'utf8'));
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims: JWTPayload, key: Parameters<SignJWT['sign']>[0], alg = 'ES256'): Promise<string> =>
      new SignJWT(claims).setProtectedHeader({ alg }).sign(key);

    const expired = await sign({ ...real, iat: now - 900, nbf: now - 900, exp: now - 600 }, keyA);
    const forged = await sign(real, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const none = new UnsecuredJWT(real).encode();
    const hs256 = await sign(real, new Uint8Array(randomBytes(32)), 'HS256');
    const rs256 = await sign(real, newRsaKeyPairSync().privateKey, 'RS256');
    const untrusted = await client(issuerC).token();
    const cases: [string, string, string][] = [
      ['expired', expired, 'exp'],
      ['forged', forged, 'bad signature'],
      ['none', none, 'token refused'],
      ['HS256', hs256, 'algorithm not allowed'],
      ['RS256', rs256, 'algorithm not allowed'],
      ['untrusted issuer', untrusted, 'not trusted'],
    ];
    for (const [what, token, detail] of cases) {
      const error = await refusal(bearer(brokerB, token));
      expect([what, error.remoteHttpStatus, error.kbsType], what).to.deep.equal([what, 401, 'TokenVerifierError']);
      expect(error.detail, what).to.contain(detail);
    }
  });

  it('a revoked node\'s token stops working at once', async function () {
    const passport = client(brokerB, { issuer: issuerA });
    const token = await passport.token();
    expect(await passport.getResource(DISK_KEY_URI)).to.deep.equal(secret);
    await brokerB.admin.revoke(node.agentId, 'verifier failed the node');
    const error = await refusal(bearer(brokerB, token));
    expect([error.kbsType, error.detail]).to.deep.equal(['TokenVerifierError', `node ${node.agentId} is revoked`]);
    await brokerB.admin.reinstate(node.agentId);
  });

  it('tampered IMA: the node running an unknown binary gets neither the key nor a token', async function () {
    await node.emulated.measure([{ path: '/usr/bin/implant', content: new Uint8Array(Buffer.from('implant')) }]);
    const background = await refusal(client(issuerA).getResource(DISK_KEY_URI));
    expect(background.detail).to.match(/ima\./);
    const passport = await refusal(client(brokerB, { issuer: issuerA }).getResource(DISK_KEY_URI));
    expect(passport.kbsType).to.equal('AttestationError');
  });

  it('tampered measured boot: a PCR extended outside the boot log is refused', async function () {
    await swtpm.swtpm.restart();
    await node.dispose();
    node = await bootTestNode(await openTpm2ToolsTpm({ tcti: swtpm.swtpm.tcti }), { tcti: swtpm.swtpm.tcti, agentId: node.agentId });
    expect(await client(issuerA).getResource(DISK_KEY_URI)).to.deep.equal(secret);
    await node.tpm.extendPcr(4, 'sha256', new Uint8Array(randomBytes(32)));
    const error = await refusal(client(issuerA).getResource(DISK_KEY_URI));
    expect(error.detail).to.match(/measured_boot|pcr_validation/);
  });
});
