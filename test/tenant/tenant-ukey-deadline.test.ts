import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AgentQuoter } from '../../lib/agent/agent-quoter.js';
import { createAgentService } from '../../lib/agent/agent-service.js';
import { BootstrapKeys } from '../../lib/agent/bootstrap-keys.js';
import { fileAgentLogs } from '../../lib/agent/agent-logs.js';
import { ServiceUnreachableError } from '../../lib/http/client-errors.js';
import type { KeylimeService } from '../../lib/http/keylime-service.js';
import type { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { EnrolledWithoutBootstrapKey, TenantClient } from '../../lib/tenant/tenant-client.js';
import type { VerifierClient } from '../../lib/verifier/verifier-client.js';
import { SoftwareEkCa } from '../../lib/tpm-access/software/ek-certificate.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import { tlsFixture } from '../http/tls-fixture.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const AGENT_ID = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000';
const TIMEOUT_MS = 1000;

/**
 * `tenant add` with a bootstrap key against a real agent service (software TPM, real mTLS) that passes
 * the identity check but drips its answer to `POST keys/ukey` a byte every 100 ms and never finishes.
 * The tenant's U send must fail at its deadline with a timeout naming the request, not wait for ever.
 */
describe('tenant: an agent that drips its ukey reply', function () {
  this.timeout(30_000);
  const tls = tlsFixture();
  let root: string;
  let tpm: SoftwareTpm;
  let service: KeylimeService;
  let agentUrl: string;
  let registered: Awaited<ReturnType<RegistrarClient['show']>>;
  const drips: NodeJS.Timeout[] = [];

  before(async function () {
    root = await mkdtemp(path.join(tmpdir(), 'ironlime-tenant-ukey-'));
    const ekCa = SoftwareEkCa.create({ commonName: 'tenant ukey test EK CA' });
    await mkdir(path.join(root, 'ek-ca'));
    await writeFile(path.join(root, 'ek-ca', 'ek-ca.pem'), ekCa.certificatePem);
    tpm = await createSoftwareTpm({ issueEkCertificate: (key) => ekCa.issue(key) });
    const ek = await tpm.ensureEk();
    const ak = await tpm.ensureAk('sha256');
    const nk = newRsaKeyPairSync();
    const nkPem = nk.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    service = createAgentService(
      {
        uuid: AGENT_ID,
        hashAlg: 'sha256',
        ekAlgorithm: 'rsa',
        ak,
        nkPublicPem: nkPem,
        quoter: new AgentQuoter(tpm, 'sha256', nkPem),
        keys: new BootstrapKeys(nk.privateKey, AGENT_ID),
        logs: fileAgentLogs(undefined, undefined),
      },
      { cert: tls.agent.certPem, key: tls.agent.keyPem, clientCa: tls.ca.certPem },
    );
    service.app.addHook('onRequest', async (request, reply) => {
      if (request.method === 'POST' && request.url.endsWith('/keys/ukey')) {
        reply.hijack();
        reply.raw.writeHead(200, { 'content-type': 'application/json' }).write('{"code": 200, "status": "Success", "results": {"');
        const drip = setInterval(() => reply.raw.write(' '), 100);
        drips.push(drip);
        reply.raw.on('close', () => clearInterval(drip));
      }
    });
    agentUrl = (await service.listen({ port: 0 })).url;
    const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
    registered = {
      agent_id: AGENT_ID,
      ek_tpm: b64(ek.ekPublic),
      ekcert: b64(ek.ekCertificate ?? new Uint8Array()),
      aik_tpm: b64(ak.akPublic),
      mtls_cert: tls.agent.certPem,
      ip: '127.0.0.1',
      port: Number(new URL(agentUrl).port),
      regcount: 1,
    };
  });

  after(async function () {
    drips.forEach(clearInterval);
    await service?.close();
    await tpm?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('fails the U send with a timeout naming the request, within the deadline', async function () {
    // Without a whole-exchange deadline the send never ends: fail at this bound, not at 30 s.
    this.timeout(TIMEOUT_MS * 4);
    const tenant = new TenantClient({
      // Neither is reached: the registrar and the verifier are the fakes below.
      registrarUrl: 'https://127.0.0.1:9',
      verifierUrl: 'https://127.0.0.1:9',
      tls: { ca: tls.ca.certPem, cert: tls.client.certPem, key: tls.client.keyPem },
      extraEkCaDirs: [path.join(root, 'ek-ca')],
      timeoutMs: TIMEOUT_MS,
    });
    tenant.registrar.close();
    (tenant as { registrar: RegistrarClient }).registrar = { show: async () => registered, close: () => undefined } as unknown as RegistrarClient;
    tenant.verifier.close();
    // A verifier that takes the enrolment: U goes to the agent after it.
    (tenant as { verifier: VerifierClient }).verifier = { addAgent: async () => undefined, close: () => undefined } as unknown as VerifierClient;
    try {
      const enrolled = await tenant.addAgent(AGENT_ID, { deliverKeys: true }).then(() => undefined, (caught: unknown) => caught);
      expect(enrolled).to.be.instanceOf(EnrolledWithoutBootstrapKey);
      const error = (enrolled as Error).cause;
      expect(error).to.be.instanceOf(ServiceUnreachableError);
      expect(error).to.deep.include({ reason: 'timeout' });
      expect((error as ServiceUnreachableError).url).to.match(/\/v2\.\d+\/keys\/ukey$/);
      expect((error as Error).message).to.include(`no complete reply within ${TIMEOUT_MS} ms`);
    } finally {
      tenant.close();
    }
  });
});
