import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AgentQuoter } from '../../lib/agent/agent-quoter.js';
import { createAgentService } from '../../lib/agent/agent-service.js';
import { BootstrapKeys } from '../../lib/agent/bootstrap-keys.js';
import { BadRemoteReplyError, ServiceUnreachableError } from '../../lib/http/client-errors.js';
import type { KeylimeService } from '../../lib/http/keylime-service.js';
import type { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import type { AgentShowReplyResults } from '../../lib/registrar/registrar-reply-dtos.js';
import { checkRegisteredEkCertificate, loadTenantCertStore, type TenantEkCheckMode } from '../../lib/tenant/ek-certificate-check.js';
import { checkAgentIdentity, checkPushAgentIdentity, randomAlphanumeric, registeredAgentUrl } from '../../lib/tenant/identity-check.js';
import { TPM_ALG_RSA, TPMA_OBJECT_DECRYPT, TPMA_OBJECT_RESTRICTED } from '../../lib/tpm/constants.js';
import { marshalTpm2bPublic, parsePublicArea, type TpmtPublicFields } from '../../lib/tpm/tpmt-public.js';
import { rocaModulus } from '../helpers/roca-modulus.js';
import { publicKeyFromTpmtPublic } from '../../lib/tpm/tpmt-public-key.js';
import { decodeRegisteredAgent } from '../../lib/tenant/registrar-agents.js';
import { resolveTenantTls } from '../../lib/tenant/tenant-tls.js';
import { SoftwareEkCa } from '../../lib/tpm-access/software/ek-certificate.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo, EkInfo } from '../../lib/tpm-access/tpm-port.js';
import { tlsFixture } from '../http/tls-fixture.js';
import { fileAgentLogs } from '../../lib/agent/agent-logs.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const AGENT_ID = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000';

/** A registrar stand-in answering `show` with fixed results (the real one is in the swtpm e2e test). */
function fakeRegistrar(results: AgentShowReplyResults): RegistrarClient {
  return { show: async () => results } as unknown as RegistrarClient;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

describe('tenant identity check (software TPM agent over real mTLS)', function () {
  this.timeout(60_000);
  let root: string;
  let ekCa: SoftwareEkCa;
  let ekCaDir: string;
  let tpm: SoftwareTpm;
  let ek: EkInfo;
  let ak: AkInfo;
  let nkPem: string;
  let nkPrivate: KeyObject;
  let otherNkPem: string;
  const services: KeylimeService[] = [];

  /** Serves the agent API over mTLS; `servedPubkey` is what it claims as NK, `boundPubkey` what PCR 16 binds. */
  async function serve(quoteTpm: SoftwareTpm, quoteAk: AkInfo, servedPubkey: string, boundPubkey = servedPubkey): Promise<string> {
    const tls = tlsFixture();
    const service = createAgentService(
      {
        uuid: AGENT_ID,
        hashAlg: 'sha256',
        ekAlgorithm: 'rsa',
        ak: quoteAk,
        nkPublicPem: servedPubkey,
        quoter: new AgentQuoter(quoteTpm, 'sha256', boundPubkey),
        keys: new BootstrapKeys(nkPrivate, AGENT_ID),
        logs: fileAgentLogs(undefined, undefined),
      },
      { cert: tls.agent.certPem, key: tls.agent.keyPem, clientCa: tls.ca.certPem },
    );
    services.push(service);
    return (await service.listen({ port: 0 })).url;
  }

  function registered(url: string, overrides: Partial<AgentShowReplyResults> = {}): AgentShowReplyResults {
    return {
      agent_id: AGENT_ID,
      ek_tpm: b64(ek.ekPublic),
      ekcert: b64(ek.ekCertificate!),
      aik_tpm: b64(ak.akPublic),
      mtls_cert: tlsFixture().agent.certPem,
      ip: '127.0.0.1',
      port: Number(new URL(url).port),
      regcount: 1,
      ...overrides,
    };
  }

  function check(results: AgentShowReplyResults, extra: Partial<Parameters<typeof checkAgentIdentity>[0]> = {}) {
    const tls = tlsFixture();
    return checkAgentIdentity({
      registrar: fakeRegistrar(results),
      agentId: AGENT_ID,
      tls: { cert: tls.client.certPem, key: tls.client.keyPem },
      extraEkCaDirs: [ekCaDir],
      ...extra,
    });
  }

  before(async function () {
    root = await mkdtemp(path.join(tmpdir(), 'ironlime-tenant-'));
    ekCa = SoftwareEkCa.create({ commonName: 'tenant test EK CA' });
    ekCaDir = path.join(root, 'ek-ca');
    await mkdir(ekCaDir);
    await writeFile(path.join(ekCaDir, 'test-ek-ca.pem'), ekCa.certificatePem);
    tpm = await createSoftwareTpm({ issueEkCertificate: (key) => ekCa.issue(key) });
    ek = await tpm.ensureEk();
    ak = await tpm.ensureAk('sha256');
    const nk = newRsaKeyPairSync();
    nkPrivate = nk.privateKey;
    nkPem = nk.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    otherNkPem = newRsaKeyPairSync().publicKey.export({ type: 'spki', format: 'pem' }).toString();
  });

  after(async function () {
    for (const service of services) {
      await service.close();
    }
    await tpm.close();
    await rm(root, { recursive: true, force: true });
  });

  it('accepts the agent whose identity quote is signed by the registered AK and binds its pubkey', async function () {
    const url = await serve(tpm, ak, nkPem);
    const verdict = await check(registered(url), { nonce: 'FixedNonce0123456789' });
    expect(verdict).to.include({ valid: true, ekAnchor: 'test-ek-ca.pem', nonce: 'FixedNonce0123456789', hashAlg: 'sha256', pubkey: nkPem });
  });

  it('refuses a quote signed by another AK', async function () {
    const other = await createSoftwareTpm();
    try {
      const url = await serve(other, await other.ensureAk('sha256'), nkPem);
      const verdict = await check(registered(url));
      expect(verdict).to.include({ valid: false, check: 'quote', reason: 'quote: signature does not verify with the AK' });
    } finally {
      await other.close();
    }
  });

  it('refuses a pubkey that PCR 16 does not bind', async function () {
    const url = await serve(tpm, ak, otherNkPem, nkPem);
    const verdict = await check(registered(url));
    expect(verdict).to.include({ valid: false, check: 'pubkey-binding', reason: 'PCR 16 does not bind the returned pubkey to the TPM' });
  });

  it('refuses a bound pubkey that U cannot be wrapped under: an EC key, a 1024-bit RSA key, text that is no key', async function () {
    const cases: [string, string, string][] = [
      ['ec', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'the pubkey the agent returned is not an RSA key (ec): U is wrapped with RSA-OAEP'],
      ['short', generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'the pubkey the agent returned is a 1024-bit RSA key: at least 2048 bits are needed to wrap U'],
      ['text', 'not a key', 'the pubkey the agent returned is not a readable public key'],
    ];
    for (const [what, pubkey, reason] of cases) {
      const url = await serve(tpm, ak, pubkey);
      const verdict = await check(registered(url));
      expect(verdict, what).to.include({ valid: false, check: 'pubkey-type', reason });
    }
  });

  it('refuses a hash algorithm the tenant does not accept', async function () {
    const url = await serve(tpm, ak, nkPem);
    const verdict = await check(registered(url), { acceptedHashAlgs: ['sha384'] });
    expect(verdict).to.include({ valid: false, check: 'algorithm', reason: 'hash_alg "sha256" is not accepted (sha384)' });
  });

  it('refuses a registrar AK that is not a restricted signing key (also for a push agent)', async function () {
    const url = await serve(tpm, ak, nkPem);
    const pub = parsePublicArea(ak.akPublic);
    for (const objectAttributes of [pub.objectAttributes & ~TPMA_OBJECT_RESTRICTED, pub.objectAttributes | TPMA_OBJECT_DECRYPT]) {
      const results = registered(url, { aik_tpm: b64(marshalTpm2bPublic({ ...pub, objectAttributes })) });
      const verdict = await check(results);
      expect(verdict).to.include({ valid: false, check: 'ak-attributes' });
      expect(verdict.valid === false && verdict.reason).to.match(new RegExp(`^the AK agent '${AGENT_ID}' registered is not a restricted signing key: attributes 0x[0-9a-f]{8} (lack restricted|must not include decrypt)$`));
      const push = await checkPushAgentIdentity({ registrar: fakeRegistrar(results), agentId: AGENT_ID, extraEkCaDirs: [ekCaDir] });
      expect(push).to.include({ valid: false, check: 'ak-attributes' });
    }
  });

  it('refuses a registrar RSA AK with the ROCA fingerprint, which a registrar that checks no key (Keylime\'s) holds', async function () {
    const url = await serve(tpm, ak, nkPem);
    const pub = parsePublicArea(ak.akPublic);
    expect(pub.type).to.equal(TPM_ALG_RSA);
    const verdict = await check(registered(url, { aik_tpm: b64(marshalTpm2bPublic({ ...pub, unique: { n: rocaModulus() } } as TpmtPublicFields)) }));
    expect(verdict).to.include({ valid: false, check: 'ak-attributes' });
    expect(verdict.valid === false && verdict.reason).to.match(new RegExp(`^the AK agent '${AGENT_ID}' registered cannot be trusted: it is an RSA key made by a TPM with the ROCA flaw`));
  });

  it('refuses a registrar reply that is the record of another agent', async function () {
    const url = await serve(tpm, ak, nkPem);
    const error = await check(registered(url, { agent_id: 'another-agent' })).then(() => undefined, (caught: unknown) => caught);
    expect(error).to.be.instanceOf(BadRemoteReplyError);
    expect((error as Error).message).to.equal(`registrar agent ${AGENT_ID}: bad reply: the reply is the record of agent 'another-agent'`);
  });

  it('gives up on an agent that drips its identity quote reply, at the deadline', async function () {
    // Without the deadline the check never returns: fail fast rather than at the suite's timeout.
    this.timeout(5_000);
    const tls = tlsFixture();
    const drips: NodeJS.Timeout[] = [];
    const dripping = createHttpsServer({ cert: tls.agent.certPem, key: tls.agent.keyPem }, (request, response) => {
      request.resume();
      response.writeHead(200, { 'content-type': 'application/json' }).write('{"code": 200, "status": "Success", "results": {"quote": "');
      drips.push(setInterval(() => response.write('r'), 50));
    });
    await new Promise<void>((resolve) => dripping.listen(0, '127.0.0.1', resolve));
    try {
      const url = `https://127.0.0.1:${(dripping.address() as AddressInfo).port}`;
      const error = await check(registered(url), { timeoutMs: 400, nonce: 'abcdefghij0123456789' }).then(() => undefined, (caught: unknown) => caught);
      expect(error).to.be.instanceOf(ServiceUnreachableError);
      expect(error).to.deep.include({ reason: 'timeout', url: `${url}/v2.6/quotes/identity?nonce=abcdefghij0123456789` });
    } finally {
      drips.forEach(clearInterval);
      dripping.closeAllConnections();
      await new Promise((resolve) => dripping.close(resolve));
    }
  });

  it('refuses an agent without an mTLS certificate at the registrar', async function () {
    const url = await serve(tpm, ak, nkPem);
    const verdict = await check(registered(url, { mtls_cert: 'disabled' }));
    expect(verdict).to.include({ valid: false, check: 'agent-record' });
  });

  it('judges the EK certificate per mode: require refuses an unknown CA, warn accepts with a warning, off skips', async function () {
    const url = await serve(tpm, ak, nkPem);
    const required = await check(registered(url), { extraEkCaDirs: [] });
    expect(required).to.include({ valid: false, check: 'ek-certificate' });
    expect(required.valid === false && required.reason).to.equal(
      `EK certificate of agent '${AGENT_ID}': EK certificate: no certificate in the store signed "CN=tenant test EK CA, O=ironlime"`,
    );
    const warned = await check(registered(url, { regcount: 2 }), { extraEkCaDirs: [], ekCheck: 'warn' });
    expect(warned.valid).to.equal(true);
    expect(warned.valid && warned.warnings).to.deep.equal([
      `agent '${AGENT_ID}': the registrar reports regcount 2 (the id was registered more than once; a different ` +
        'EK or AK for a stored id is refused, so this alone does not mean its TPM changed)',
      required.valid === false ? required.reason : '',
    ]);
    const off = await check(registered(url, { ekcert: null }), { extraEkCaDirs: [], ekCheck: 'off' });
    expect(off).to.include({ valid: true, ekAnchor: undefined });
  });

  it('an EK certificate for another key is refused under require', async function () {
    const other = await createSoftwareTpm({ issueEkCertificate: (key) => ekCa.issue(key) });
    try {
      const foreignCert = (await other.ensureEk()).ekCertificate!;
      const agent = decodeRegisteredAgent(registered('https://127.0.0.1:1', { ekcert: b64(foreignCert) }), AGENT_ID);
      expect(checkRegisteredEkCertificate(agent, 'require', loadTenantCertStore([ekCaDir]))).to.deep.equal({
        ok: false,
        reason: `EK certificate of agent '${AGENT_ID}': the certificate does not hold the registered EK public key`,
      });
    } finally {
      await other.close();
    }
  });

  it('an EK with the ROCA fingerprint is refused under require, although its certificate is genuine and holds it', function () {
    const pub = parsePublicArea(ek.ekPublic);
    expect(pub.type).to.equal(TPM_ALG_RSA);
    const weak = marshalTpm2bPublic({ ...pub, unique: { n: rocaModulus() } } as TpmtPublicFields);
    const cert = ekCa.issue(publicKeyFromTpmtPublic(parsePublicArea(weak)));
    const agent = decodeRegisteredAgent(registered('https://127.0.0.1:1', { ek_tpm: b64(weak), ekcert: b64(cert) }), AGENT_ID);
    const outcome = checkRegisteredEkCertificate(agent, 'require', loadTenantCertStore([ekCaDir]));
    expect(outcome.ok === false && outcome.reason).to.match(new RegExp(`^EK certificate of agent '${AGENT_ID}': the EK is an RSA key made by a TPM with the ROCA flaw`));
  });

  it('refuses a certificate problem under a mode it does not know, as under require (never as under warn)', function () {
    const agent = decodeRegisteredAgent(registered('https://127.0.0.1:1', { ekcert: null }), AGENT_ID);
    expect(checkRegisteredEkCertificate(agent, 'required' as TenantEkCheckMode, loadTenantCertStore([ekCaDir]))).to.deep.equal({
      ok: false,
      reason: `EK certificate of agent '${AGENT_ID}': the agent registered no EK certificate`,
    });
  });

  it('decodes the registrar record: "disabled" mTLS is null, a non-certificate is a bad reply, IPv6 contact URLs are bracketed', function () {
    const base = registered('https://127.0.0.1:9002');
    expect(decodeRegisteredAgent({ ...base, mtls_cert: 'disabled' }, AGENT_ID).mtlsCert).to.equal(null);
    expect(() => decodeRegisteredAgent({ ...base, mtls_cert: 'not a cert' }, AGENT_ID))
      .to.throw(BadRemoteReplyError, `registrar agent ${AGENT_ID}: bad reply: mtls_cert is not a PEM certificate`);
    expect(registeredAgentUrl(decodeRegisteredAgent({ ...base, ip: '::1', port: 9002 }, AGENT_ID))).to.equal('https://[::1]:9002');
    expect(registeredAgentUrl(decodeRegisteredAgent({ ...base, ip: null }, AGENT_ID))).to.equal(undefined);
  });

  it('refuses a registered ip no agent URL can be built from as a bad registrar reply naming the record, not an opaque Invalid URL', function () {
    const base = registered('https://127.0.0.1:9002');
    // A Keylime registrar stores any text the agent sent as its ip.
    for (const ip of ['10.0.0.1:9002', '...', '1.0x7f']) {
      expect(() => registeredAgentUrl(decodeRegisteredAgent({ ...base, ip, port: 9002 }, AGENT_ID)), ip)
        .to.throw(BadRemoteReplyError, `registrar agent ${AGENT_ID}: bad reply: ip ${JSON.stringify(ip)} is not an IP address or a host name the agent can be reached at`);
    }
    expect(registeredAgentUrl(decodeRegisteredAgent({ ...base, ip: 'keylime_agent', port: 9002 }, AGENT_ID))).to.equal('https://keylime_agent:9002');
  });

  it('makes Keylime-style nonces: 20 letters and digits, different each time', function () {
    const nonces = new Set(Array.from({ length: 50 }, () => randomAlphanumeric(20)));
    expect(nonces.size).to.equal(50);
    for (const nonce of nonces) {
      expect(nonce).to.match(/^[A-Za-z0-9]{20}$/);
    }
  });

  it('resolves the tenant TLS from three files or a data dir with a CA, and refuses anything else', async function () {
    await expectInvalid(resolveTenantTls({}), "invalid config: tenant.tls: give --data-dir (the services' data dir) or --ca, --cert and --key");
    await expectInvalid(resolveTenantTls({ caFile: '/x' }), 'invalid config: tenant.tls: --ca, --cert and --key go together');
    await expectInvalid(resolveTenantTls({ dataDir: root }), `invalid config: tenant.dataDir: no CA at ${path.join(root, 'ca', 'cacert.crt')}: point --data-dir at the registrar's data dir`);
    const tls = tlsFixture();
    const files = { caFile: path.join(root, 'ca.pem'), certFile: path.join(root, 'c.pem'), keyFile: path.join(root, 'k.pem') };
    await writeFile(files.caFile, tls.ca.certPem);
    await writeFile(files.certFile, tls.client.certPem);
    await writeFile(files.keyFile, 'not pem', { mode: 0o600 });
    await expectInvalid(resolveTenantTls(files), `invalid config: tenant.tls: ${files.keyFile} is not PEM`);
    await writeFile(files.keyFile, tls.client.keyPem);
    expect(await resolveTenantTls(files)).to.deep.equal({ ca: tls.ca.certPem, cert: tls.client.certPem, key: tls.client.keyPem });
  });
});

async function expectInvalid(promise: Promise<unknown>, message: string): Promise<void> {
  let failure: unknown;
  await promise.catch((error: unknown) => (failure = error));
  expect(failure).to.have.property('code', 'ERR_INVALID_CONFIG');
  expect((failure as Error).message).to.equal(message);
}
