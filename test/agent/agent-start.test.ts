import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { initAgent } from '../../lib/agent/agent-init.js';
import { startAgent, type RunningAgent } from '../../lib/agent/agent-server.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { startRegistrar, type RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { openRegistrarAdmin, showRegistrarAgent } from '../../lib/tenant/registrar-agents.js';
import { resolveTenantTls } from '../../lib/tenant/tenant-tls.js';
import { openTestSchema } from '../helpers/databases.js';
import { closedPort } from '../helpers/ports.js';


describe('startAgent on the software TPM (registrar on PostgreSQL)', function () {
  this.timeout(60_000);
  let root: string;
  let schema: Awaited<ReturnType<typeof openTestSchema>>;
  let registrar: RunningRegistrar | undefined;
  let agent: RunningAgent | undefined;

  before(async function () {
    root = await mkdtemp(path.join(tmpdir(), 'ironlime-agent-start-'));
    schema = await openTestSchema();
  });
  after(async function () {
    await agent?.close();
    await registrar?.close();
    await schema?.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it('init creates the software EK CA; start waits for a registrar that comes up late, then registers and activates', async function () {
    const dataDir = path.join(root, 'node');
    const initialized = await initAgent({ dataDir, tpm: 'software' });
    expect(initialized.ekCaDir).to.equal(path.join(dataDir, 'ek-ca'));
    expect(initialized.ekCertificate).to.be.instanceOf(Uint8Array);
    const port = await closedPort();
    const starting = startAgent({ dataDir, registrarUrl: `http://127.0.0.1:${port}`, port: 0, tpm: 'software', emulate: true });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    registrar = await startRegistrar(
      { dataDir: path.join(root, 'registrar'), port, tlsPort: 0, ekCaDirs: [initialized.ekCaDir!] },
      { database: schema.database },
    );
    agent = await starting;
    expect(agent.uuid).to.equal(initialized.uuid);
    const tls = await resolveTenantTls({ dataDir: path.join(root, 'registrar') });
    const admin = openRegistrarAdmin(registrar.tlsUrl, tls);
    try {
      expect((await showRegistrarAgent(admin, agent.uuid)).mtlsCert).to.equal(agent.agentCertPem);
    } finally {
      admin.close();
    }
  });

  it('appendIma adds a kernel-style entry, and refuses a digest that is not SHA-256', async function () {
    const entry = await agent!.appendIma('/usr/bin/evil', 'ee'.repeat(32));
    expect(entry.line).to.match(/^10 [0-9a-f]{40} ima-ng sha256:e{64} \/usr\/bin\/evil$/);
    expect(await readFile(agent!.imaLogPath!, 'utf8')).to.include(`${entry.line}\n`);
    for (const digest of ['ee', 'zz'.repeat(32), new Uint8Array(20)]) {
      let failure: unknown;
      await agent!.appendIma('/x', digest).catch((error: unknown) => (failure = error));
      expect(failure).to.have.property('code', 'ERR_INVALID_PARAMETER_VALUE');
      expect((failure as Error).message).to.equal('digest: must be a SHA-256 digest (64 hex digits)');
    }
  });

  it('a restarted software-TPM agent has a new EK, so the registrar refuses it until its record is deleted', async function () {
    let failure: unknown;
    await startAgent({ dataDir: path.join(root, 'node'), registrarUrl: registrar!.httpUrl, port: 0, tpm: 'software' }).catch(
      (error: unknown) => (failure = error),
    );
    expect(failure).to.be.instanceOf(KeylimeHttpError);
    expect((failure as KeylimeHttpError).remoteHttpStatus).to.equal(403);
    expect((failure as KeylimeHttpError).status).to.match(/^Agent re-registration with different TPM identity is forbidden/);
  });
});
