import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import type { Node } from '../../interfaces/node.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import type { RunningAgent } from '../../lib/agent/agent-server.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { loadOrCreateServiceTls } from '../../lib/pki/service-tls.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { runCli } from '../helpers/cli-runner.js';
import { createDeployment, policyForAgent, refstateForAgent, type Deployment } from '../verifier/helpers/verifier-fixture.js';

/** A verifier that knows no agent, speaks API 2.6 and records every enrolment it is sent. */
class CapturingVerifier {
  readonly enrolments: Record<string, unknown>[] = [];
  server: Server | undefined;
  url = '';

  async start(tls: { cert: string; key: string }): Promise<void> {
    this.server = createServer({ cert: tls.cert, key: tls.key }, (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const reply = (code: number, results: unknown): void => {
          response.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify({ code, status: code === 200 ? 'Success' : 'Not Found', results }));
        };
        if (request.url === '/version') {
          reply(200, { current_version: '2.6', supported_versions: ['2.6'] });
        } else if (request.method === 'POST' && /^\/v2\.6\/agents\/[^/]+$/.test(request.url ?? '')) {
          this.enrolments.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
          reply(200, {});
        } else {
          reply(404, {});
        }
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

/**
 * Issue 12 item 1: `ironlime tenant add` and the keylime driver, given the same documents for the same
 * agent, send the verifier the same enrolment request (one builder, Keylime's rule) — over real mTLS,
 * after each has run the identity check against a registered software-TPM agent.
 */
describe('tenant and keylime driver send the same enrolment request', function () {
  this.timeout(120_000);
  let deployment: Deployment;
  let agent: RunningAgent;
  const verifier = new CapturingVerifier();

  before(async function () {
    deployment = await createDeployment();
    agent = await deployment.startAgent('same-enrolment');
    await verifier.start(await loadOrCreateServiceTls({ dataDir: deployment.servicesDir, serviceName: 'capturing-verifier' }));
  });

  after(async function () {
    await verifier.stop();
    await deployment?.dispose();
  });

  it('sends the same body from the driver, `ironlime tenant add` and TenantClient (given the driver metadata)', async function () {
    const file = (name: string, text: string): string => {
      writeFileSync(path.join(deployment.root, name), text, { mode: 0o600 });
      return path.join(deployment.root, name);
    };
    const policy = file('policy.json', policyForAgent(agent));
    const excludes = file('excludes.txt', '^/tmp/.*\n');
    const refstate = file('refstate.json', refstateForAgent(agent));
    const tpmPolicy = JSON.stringify({ '23': ['00'.repeat(32)] });
    const sha = (at: string): string => createHash('sha256').update(readFileSync(at)).digest('hex');
    const node: Node = {
      uuid: '5a0e1d9c-0d7e-4a57-8f49-6c7a4e1f2b10',
      name: 'rack1-u1',
      provisionState: 'cleaning',
      attestationInterface: 'keylime',
      driverInfo: {
        keylime_runtime_policy: policy,
        keylime_runtime_policy_checksum: sha(policy),
        keylime_excludelist: excludes,
        keylime_mb_refstate: refstate,
        keylime_tpm_policy: tpmPolicy,
        keylime_agent_uuid: agent.uuid,
        keylime_verifier_url: verifier.url,
        keylime_registrar_url: deployment.registrar.tlsUrl,
        keylime_tls_ca: deployment.caFile,
        keylime_tls_cert: file('tenant.crt', deployment.tenantTls.cert),
        keylime_tls_key: file('tenant.key', deployment.tenantTls.key),
      },
      instanceInfo: {},
      lastAttestation: { status: null, reason: null, eventIds: [], at: null },
      createdAt: new Date(),
      updatedAt: new Date(),
    };
    await new KeylimeAttestation({ ekCheck: 'off' }).startAttestation(createTask(node, buildConfig({ enabledAttestationInterfaces: ['keylime'] })));
    expect(verifier.enrolments).to.have.length(1);
    const fromDriver = verifier.enrolments[0] as Record<string, unknown>;
    // The tenant CLI takes no metadata; the library call behind it does.
    const cli = await runCli([
      'tenant', 'add', '--uuid', agent.uuid, '--verifier', verifier.url, '--registrar', deployment.registrar.tlsUrl, '--data-dir', deployment.servicesDir,
      '--ek-check', 'off', '--runtime-policy', policy, '--excludelist', excludes, '--mb-policy', refstate, '--tpm-policy', tpmPolicy,
    ]);
    expect(cli.code, cli.stderr).to.equal(0);
    const fromCli = verifier.enrolments[1] as Record<string, unknown>;
    expect({ ...fromCli, metadata: fromDriver['metadata'] }).to.deep.equal(fromDriver);
    expect(fromCli['metadata']).to.equal('{}');
    const tenant = deployment.tenant(verifier.url);
    await tenant.addAgent(agent.uuid, {
      runtimePolicy: readFileSync(policy, 'utf8'),
      excludeList: readFileSync(excludes, 'utf8'),
      mbPolicy: readFileSync(refstate, 'utf8'),
      tpmPolicy,
      metadata: JSON.parse(fromDriver['metadata'] as string) as Record<string, unknown>,
    });
    expect(verifier.enrolments[2]).to.deep.equal(fromDriver);
    expect(JSON.parse(fromDriver['tpm_policy'] as string)).to.deep.equal({ '23': ['00'.repeat(32)], mask: '0x80ffff' });
  });
});
