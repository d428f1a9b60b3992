import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AgentClient } from '../../lib/agent/agent-client.js';
import { loadOrCreateAgentServerTls, loadOrCreateNodeKey } from '../../lib/agent/agent-files.js';
import { AgentQuoter } from '../../lib/agent/agent-quoter.js';
import { startAgent, type RunningAgent } from '../../lib/agent/agent-server.js';
import { createAgentService } from '../../lib/agent/agent-service.js';
import { BootstrapKeys } from '../../lib/agent/bootstrap-keys.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { evaluateQuote } from '../../lib/attestation/internal/evaluate-quote.js';
import type { AgentQuoteReply } from '../../lib/attestation/internal/quote-reply.js';
import { KeylimeHttpError, ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { createKeylimeClient } from '../../lib/http/keylime-client.js';
import { createCertificateAuthority, issueFromCa } from '../../lib/pki/certificate-authority.js';
import type { ServiceTls } from '../../lib/pki/service-tls.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { testAgentPolicies } from '../helpers/agent-policies.js';
import { startRegistrar, type RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { checkAgentIdentity } from '../../lib/tenant/identity-check.js';
import { openRegistrarAdmin } from '../../lib/tenant/registrar-agents.js';
import { resolveTenantTls } from '../../lib/tenant/tenant-tls.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import { startSwtpm, type SwtpmHandle } from '../../lib/tpm-access/swtpm-manager.js';
import { openTpm2ToolsTpm } from '../../lib/tpm-access/tpm2-tools/tpm-adapter.js';
import { runCli, spawnCli } from '../helpers/cli-runner.js';
import { openTestSchema } from '../helpers/databases.js';
import { fileAgentLogs } from '../../lib/agent/agent-logs.js';

/** The KeylimeHttpError a promise rejected with (fails the test if it resolved or threw something else). */
async function httpRefusal(promise: Promise<unknown>): Promise<KeylimeHttpError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(KeylimeHttpError);
    return error as KeylimeHttpError;
  }
  expect.fail('expected the remote service to refuse');
}

/** Command lines of running swtpm processes whose state lives under `dir`. */
function swtpmProcessesUnder(dir: string): string[] {
  return execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.startsWith('swtpm socket') && line.includes(dir));
}

/**
 * Real swtpm processes, a real registrar (PostgreSQL) and real agents on loopback: registration and
 * activation, the registrar's refusals, the tenant's identity check, mTLS on the agent, the CLIs.
 * Tests run in order and build on each other (one registrar, one enrolled agent A).
 */
describe('enrolment end to end (swtpm, registrar, agents, tenant)', function () {
  this.timeout(120_000);
  let root: string;
  let schema: Awaited<ReturnType<typeof openTestSchema>>;
  let swtpmA: SwtpmHandle;
  let swtpmB: SwtpmHandle;
  /** Certificates (no keys) of the local CA both test swtpms got their EK certificates from. */
  let sharedEkCaCerts: string;
  let registrarDir: string;
  let registrar: RunningRegistrar;
  let tenantTls: ServiceTls;
  let admin: RegistrarClient;
  let clientCaFile: string;
  let agentA: RunningAgent | undefined;

  before(async function () {
    root = await mkdtemp(path.join(tmpdir(), 'ironlime-e2e-'));
    schema = await openTestSchema();
    const sharedCa = path.join(root, 'swtpm-ca');
    swtpmA = await startSwtpm({ stateDir: path.join(root, 'swtpm-a'), caDir: sharedCa });
    swtpmB = await startSwtpm({ stateDir: path.join(root, 'swtpm-b'), caDir: sharedCa });
    const certificates = await swtpmA.localCaCertificates();
    sharedEkCaCerts = path.join(root, 'swtpm-ca-certs');
    await mkdir(sharedEkCaCerts);
    await copyFile(certificates.rootPath, path.join(sharedEkCaCerts, 'swtpm-root.pem'));
    await copyFile(certificates.intermediatePath, path.join(sharedEkCaCerts, 'swtpm-issuer.pem'));
    registrarDir = path.join(root, 'registrar');
    registrar = await startRegistrar({ dataDir: registrarDir, port: 0, tlsPort: 0, ekCaDirs: [sharedEkCaCerts] }, { database: schema.database });
    tenantTls = await resolveTenantTls({ dataDir: registrarDir });
    admin = openRegistrarAdmin(registrar.tlsUrl, tenantTls);
    clientCaFile = path.join(registrarDir, 'ca', 'cacert.crt');
  });

  after(async function () {
    admin?.close();
    await agentA?.close();
    await registrar?.close();
    await swtpmA?.stop();
    await swtpmB?.stop();
    await schema?.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it('an emulated agent registers its swtpm EK and AK, activates, and the registrar shows it', async function () {
    agentA = await startAgent({ dataDir: path.join(root, 'agent-a'), registrarUrl: registrar.httpUrl, port: 0, tpm: swtpmA.tcti, emulate: true, clientCaFile });
    expect(await admin.list()).to.include(agentA.uuid);
    const shown = await admin.show(agentA.uuid);
    expect(shown).to.include({ agent_id: agentA.uuid, mtls_cert: agentA.agentCertPem, ip: '127.0.0.1', port: Number(new URL(agentA.url).port), regcount: 1 });
    expect(shown.ekcert).to.be.a('string');
  });

  it('refuses an agent whose auth_tag is forged, and does not activate it', async function () {
    const tpm = await openTpm2ToolsTpm({ tcti: swtpmB.tcti });
    const client = new RegistrarClient({ baseUrl: registrar.httpUrl });
    try {
      const ek = await tpm.ensureEk();
      const ak = await tpm.ensureAk('sha256');
      const blob = await client.register('forged-agent', { ekPublic: ek.ekPublic, ekCertificate: ek.ekCertificate, akPublic: ak.akPublic, ip: '127.0.0.1', port: 9002 });
      expect(blob.length).to.be.greaterThan(300);
      const refusal = await httpRefusal(client.activate('forged-agent', 'ab'.repeat(48)));
      expect(refusal.remoteHttpStatus).to.equal(400);
      expect(refusal.status).to.equal("auth_tag for agent 'forged-agent' does not match; the agent is not activated");
      expect((await httpRefusal(admin.show('forged-agent'))).remoteHttpStatus).to.equal(404);
      await admin.delete('forged-agent');
    } finally {
      client.close();
      await tpm.close();
    }
  });

  it('refuses a re-registration of an agent id with a different EK', async function () {
    const before = await admin.show(agentA!.uuid);
    const refusal = await httpRefusal(
      startAgent({ dataDir: path.join(root, 'agent-a-other-tpm'), uuid: agentA!.uuid, registrarUrl: registrar.httpUrl, port: 0, tpm: swtpmB.tcti, clientCaFile }),
    );
    expect(refusal.remoteHttpStatus).to.equal(403);
    expect(refusal.status).to.match(/^Agent re-registration with different TPM identity is forbidden \(ek_tpm, aik_tpm, ekcert of agent/);
    expect(await admin.show(agentA!.uuid)).to.deep.equal(before);
  });

  it('the tenant verifies the identity quote against the registered AK and the EK certificate against the trusted CAs', async function () {
    const verdict = await checkAgentIdentity({ registrar: admin, agentId: agentA!.uuid, tls: tenantTls, extraEkCaDirs: [sharedEkCaCerts] });
    expect(verdict).to.include({ valid: true, ekAnchor: 'swtpm-issuer.pem', hashAlg: 'sha256', pubkey: agentA!.nkPublicPem });
    expect(verdict.valid && verdict.warnings).to.deep.equal([]);

    const vendorOnly = await checkAgentIdentity({ registrar: admin, agentId: agentA!.uuid, tls: tenantTls });
    expect(vendorOnly).to.include({ valid: false, check: 'ek-certificate' });
    expect(vendorOnly.valid === false && vendorOnly.reason).to.match(/^EK certificate of agent '[0-9a-f-]+': EK certificate: no certificate in the store signed /);

    const warned = await checkAgentIdentity({ registrar: admin, agentId: agentA!.uuid, tls: tenantTls, ekCheck: 'warn' });
    expect(warned.valid).to.equal(true);
    expect(warned.valid && warned.warnings).to.have.length(1);
  });

  it('the tenant refuses an impostor with the agent\'s TLS key and NK whose quote is signed by another AK', async function () {
    const dataDir = path.join(root, 'agent-a');
    const nk = await loadOrCreateNodeKey(dataDir);
    const tls = await loadOrCreateAgentServerTls(dataDir, agentA!.uuid, ['127.0.0.1']);
    expect(tls.cert).to.equal(agentA!.agentCertPem);
    const tpm = await createSoftwareTpm();
    const ek = await tpm.ensureEk();
    const ak = await tpm.ensureAk('sha256');
    const impostor = createAgentService(
      {
        uuid: agentA!.uuid,
        hashAlg: 'sha256',
        ekAlgorithm: ek.ekAlgorithm,
        ak,
        nkPublicPem: nk.publicPem,
        quoter: new AgentQuoter(tpm, 'sha256', nk.publicPem),
        keys: new BootstrapKeys(nk.privateKey, agentA!.uuid),
        logs: fileAgentLogs(undefined, undefined),
      },
      { cert: tls.cert, key: tls.key, clientCa: await readFile(clientCaFile, 'utf8') },
    );
    try {
      const address = await impostor.listen({ port: 0 });
      const verdict = await checkAgentIdentity({
        registrar: admin,
        agentId: agentA!.uuid,
        tls: tenantTls,
        extraEkCaDirs: [sharedEkCaCerts],
        agentUrl: address.url,
      });
      expect(verdict).to.include({ valid: false, check: 'quote', reason: 'quote: signature does not verify with the AK' });
    } finally {
      await impostor.close();
      await tpm.close();
    }
  });

  it('the agent refuses clients without a certificate or with one from another CA, and is reached only with its pinned certificate', async function () {
    const agent = agentA!;
    const noCert = createKeylimeClient({ baseUrl: agent.url, tls: { pinnedServerCert: agent.agentCertPem } });
    const otherCa = createCertificateAuthority({ commonName: 'another CA' });
    const foreign = issueFromCa(otherCa, { commonName: 'tenant', type: 'client' });
    const foreignClient = createKeylimeClient({ baseUrl: agent.url, tls: { pinnedServerCert: agent.agentCertPem, cert: foreign.certPem, key: foreign.keyPem } });
    const wrongPin = new AgentClient({ baseUrl: agent.url, agentCert: foreign.certPem, clientTls: tenantTls });
    const good = new AgentClient({ baseUrl: agent.url, agentCert: agent.agentCertPem, clientTls: tenantTls });
    try {
      for (const attempt of [() => noCert.get('/version'), () => foreignClient.get('/version'), () => wrongPin.version()]) {
        let failure: unknown;
        await attempt().catch((error: unknown) => (failure = error));
        expect(failure).to.be.instanceOf(ServiceUnreachableError);
        expect((failure as ServiceUnreachableError).code).to.equal('ERR_SERVICE_UNREACHABLE');
      }
      expect(await good.version()).to.deep.equal({ supported_version: '2.6', supported_versions: ['2.1', '2.2', '2.3', '2.4', '2.5', '2.6'] });
      expect((await good.info()).agent_uuid).to.equal(agent.uuid);
    } finally {
      noCert.close();
      foreignClient.close();
      wrongPin.close();
      good.close();
    }
  });

  it('CLI: tenant registrar list / show and tenant identity', async function () {
    const connection = ['--registrar', registrar.tlsUrl, '--data-dir', registrarDir];
    const list = await runCli(['tenant', 'registrar', 'list', ...connection]);
    expect(list.code).to.equal(0);
    expect((JSON.parse(list.stdout) as { uuids: string[] }).uuids).to.include(agentA!.uuid);
    const show = await runCli(['tenant', 'registrar', 'show', '--uuid', agentA!.uuid, ...connection]);
    expect(show.code).to.equal(0);
    expect(JSON.parse(show.stdout)).to.include({ agent_id: agentA!.uuid, mtls_cert: agentA!.agentCertPem, regcount: 1 });
    const valid = await runCli(['tenant', 'identity', '--uuid', agentA!.uuid, '--ek-ca-dir', sharedEkCaCerts, ...connection]);
    expect(valid.code).to.equal(0);
    expect(JSON.parse(valid.stdout)).to.deep.equal({ valid: true, agent_id: agentA!.uuid, ek_anchor: 'swtpm-issuer.pem', hash_alg: 'sha256', warnings: [] });
    const untrusted = await runCli(['tenant', 'identity', '--uuid', agentA!.uuid, ...connection]);
    expect(untrusted.code).to.equal(1);
    expect(JSON.parse(untrusted.stdout)).to.include({ valid: false, check: 'ek-certificate' });
  });

  it('CLI: ima-append measures a file on the emulated node; the next integrity quote still replays', async function () {
    const appended = await runCli(['agent', 'ima-append', '--data-dir', path.join(root, 'agent-a'), '--path', '/usr/bin/evil', '--digest', 'ee'.repeat(32)]);
    expect(appended.code).to.equal(0);
    expect(appended.stdout).to.match(/^10 [0-9a-f]{40} ima-ng sha256:e{64} \/usr\/bin\/evil\n$/);
    const client = new AgentClient({ baseUrl: agentA!.url, agentCert: agentA!.agentCertPem, clientTls: tenantTls });
    try {
      const nonce = 'n0nceForIntegrity123';
      const reply = await client.integrityQuote({ nonce, mask: '0x400', partial: false });
      expect(reply.ima_measurement_list?.trimEnd().split('\n')).to.have.length(2);
      expect(reply.ima_measurement_list).to.include(appended.stdout);
      const round = evaluateQuote({
        state: initialAgentState(),
        policies: testAgentPolicies((await admin.show(agentA!.uuid)).aik_tpm as string, { tpmPolicy: { mask: '0x400' } }),
        reply: reply as AgentQuoteReply,
        nonce,
        now: Math.floor(Date.now() / 1000),
      });
      expect(round.failures).to.deep.equal([]);
      expect(round.verdict).to.equal('pass');
    } finally {
      client.close();
    }
  });

  it('CLI: tenant registrar delete removes the agent', async function () {
    const deleted = await runCli(['tenant', 'registrar', 'delete', '--uuid', agentA!.uuid, '--registrar', registrar.tlsUrl, '--data-dir', registrarDir]);
    expect(deleted.code).to.equal(0);
    expect((await httpRefusal(admin.show(agentA!.uuid))).remoteHttpStatus).to.equal(404);
    expect(await admin.list()).to.not.include(agentA!.uuid);
  });

  it('CLI agent init, then the agent with its own swtpm: refused for an EK CA the registrar does not trust, accepted once --ek-ca-dir adds it, stops its swtpm on SIGTERM', async function () {
    const dataDir = path.join(root, 'agent-x');
    const init = await runCli(['agent', 'init', '--data-dir', dataDir, '--swtpm', '--swtpm-ca-dir', path.join(root, 'agent-x-ca')]);
    expect(init.code).to.equal(0);
    const uuid = (await readFile(path.join(dataDir, 'agent-uuid'), 'utf8')).trim();
    expect(init.stdout).to.equal(`agent ${uuid} initialized\nEK certificate: present\nEK CA certificates of this TPM: ${path.join(dataDir, 'ek-ca')}\n`);
    expect(swtpmProcessesUnder(dataDir)).to.deep.equal([]);
    // Later starts find the local CA the swtpm was manufactured with, without --swtpm-ca-dir.
    const args = ['agent', '--data-dir', dataDir, '--swtpm', '--emulate', '--port', '0', '--client-ca', clientCaFile];
    const refused = spawnCli([...args, '--registrar', registrar.httpUrl]);
    expect(await refused.exited()).to.equal(2);
    expect(refused.stderr()).to.match(/: 403 EK certificate of agent '[0-9a-f-]+' refused: EK certificate: no certificate in the store signed /);
    expect(swtpmProcessesUnder(dataDir)).to.deep.equal([]);
    const ekCaDir = path.join(dataDir, 'ek-ca');
    expect((await readdir(ekCaDir)).sort()).to.deep.equal(['swtpm-localca-issuer.pem', 'swtpm-localca-root.pem']);

    admin.close();
    await registrar.close();
    registrar = await startRegistrar(
      { dataDir: registrarDir, port: 0, tlsPort: 0, ekCaDirs: [sharedEkCaCerts, ekCaDir] },
      { database: schema.database },
    );
    admin = openRegistrarAdmin(registrar.tlsUrl, tenantTls);
    const running = spawnCli([...args, '--registrar', registrar.httpUrl]);
    try {
      await running.waitForOutput('registered and activated', 60_000);
      expect(running.stdout()).to.include(`agent ${uuid} registered and activated`);
      expect((await admin.show(uuid)).agent_id).to.equal(uuid);
      expect(swtpmProcessesUnder(dataDir)).to.have.length(1);
      const appended = await runCli(['agent', 'ima-append', '--data-dir', dataDir, '--path', '/usr/local/bin/tool', '--digest', '01'.repeat(32)]);
      expect(appended.code).to.equal(0);
      expect(await readFile(path.join(dataDir, 'ima', 'ascii_runtime_measurements'), 'utf8')).to.include(appended.stdout);
    } finally {
      running.child.kill('SIGTERM');
    }
    expect(await running.exited()).to.equal(0);
    expect(swtpmProcessesUnder(dataDir)).to.deep.equal([]);
    expect(existsSync(path.join(dataDir, 'emulation.json'))).to.equal(false);
  });
});
