import { rm } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { startHostAgent, type RunningHostAgent } from '../../lib/agent/host-agent.js';
import { buildAgentConfig } from '../../lib/agent/agent-config.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { createKeylimeClient, type KeylimeClient } from '../../lib/http/keylime-client.js';
import { HOST_SECRET_FILE } from '../../lib/identity/host-secret-file.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { LivenessClient } from '../../lib/verifier/liveness/liveness-client.js';
import { runCli } from '../helpers/cli-runner.js';
import { createDeployment, type Deployment } from '../verifier/helpers/verifier-fixture.js';

/**
 * Nodes without a TPM end to end (issue 15): a real registrar and verifier on PostgreSQL, agents
 * started with `startHostAgent` over mTLS. The verifier's liveness checks use fresh nonces, so the
 * test drives them with `checkNow` instead of waiting for the interval.
 */
describe('identity without a TPM: registration and liveness checks end to end', function () {
  this.timeout(60_000);
  let deployment: Deployment;
  let admin: RegistrarClient;
  let verifierHttp: KeylimeClient;
  let liveness: LivenessClient;
  const hosts: RunningHostAgent[] = [];

  before(async function () {
    deployment = await createDeployment();
    // One silent check makes a node unreachable: checks made here back to back are not an interval apart, and misses closer together need as long a silence (liveness-decision).
    const verifier = await deployment.startVerifier({ quoteInterval: 3600, maxRetries: 1 });
    admin = new RegistrarClient({ baseUrl: deployment.registrar.tlsUrl, tls: { ca: deployment.registrar.caCert, cert: deployment.tenantTls.cert, key: deployment.tenantTls.key } });
    verifierHttp = createKeylimeClient({ baseUrl: verifier.url, tls: { ca: verifier.caCert, cert: deployment.tenantTls.cert, key: deployment.tenantTls.key } });
    liveness = new LivenessClient(verifierHttp);
  });

  after(async function () {
    admin?.close();
    verifierHttp?.close();
    for (const host of hosts) await host.close().catch(() => undefined);
    await deployment?.dispose();
  });

  async function startHost(name: string, identity: 'id-secret' | 'id-only', hostId: string): Promise<RunningHostAgent> {
    const host = await startHostAgent(
      buildAgentConfig({ dataDir: path.join(deployment.root, name), registrarUrl: deployment.registrar.httpUrl, port: 0, clientCaFile: deployment.caFile, identity, hostId }),
    );
    hosts.push(host);
    return host;
  }

  /** Enrols the agent for liveness from what the registrar holds, as the driver does. */
  async function enrol(agentId: string): Promise<void> {
    const identity = await admin.identity(agentId);
    await liveness.enrol(agentId, {
      mode: identity.identity_mode === 'id-secret' ? 'id-secret' : 'id-only',
      ip: identity.ip as string,
      port: identity.port as number,
      mtlsCert: identity.mtls_cert as string,
      proofKey: identity.host_proof_key,
    });
  }

  it('an id-secret node registers, proves its secret for every fresh nonce, and is shown as live without integrity evidence', async function () {
    const host = await startHost('secret-a', 'id-secret', 'mac:02:00:00:00:15:01');
    expect((await admin.show(host.uuid)).trust_level).to.equal('id-secret');
    await enrol(host.uuid);
    const status = await liveness.status(host.uuid);
    expect(status).to.include({ identity_mode: 'id-secret', trust_level: 'id-secret', liveness_status: 'alive', misses: 0 });
    expect(status.attestation_status).to.not.match(/PASS/);
    expect(status.integrity_evidence).to.include('integrity evidence unavailable');
    await deployment.verifier!.liveness.checkNow();
    expect((await liveness.status(host.uuid)).liveness_status).to.equal('alive');
  });

  it('an id-only node registers at once and is checked for reachability only; silence makes it unreachable', async function () {
    const host = await startHost('only-a', 'id-only', 'mac:02:00:00:00:15:02');
    expect((await admin.identity(host.uuid)).trust_level).to.equal('id-only');
    await enrol(host.uuid);
    expect((await liveness.status(host.uuid)).liveness_status).to.equal('alive');
    await host.close();
    await deployment.verifier!.liveness.checkNow();
    const silent = await liveness.status(host.uuid);
    expect(silent.liveness_status).to.equal('unreachable');
    expect(silent.last_failure).to.include('no answer to 1 liveness checks');
  });

  it('a restarted id-secret node proves the same secret; one that lost it is refused by the registrar and flagged', async function () {
    const first = await startHost('secret-b', 'id-secret', 'mac:02:00:00:00:15:03');
    await enrol(first.uuid);
    await first.close();
    const again = await startHost('secret-b', 'id-secret', 'mac:02:00:00:00:15:03');
    // On another port: enrolled again from the registrar's record, as the driver does, so the check reaches it.
    await enrol(again.uuid);
    await deployment.verifier!.liveness.checkNow();
    expect((await liveness.status(again.uuid)).liveness_status).to.equal('alive');
    await again.close();

    await rm(path.join(deployment.root, 'secret-b', HOST_SECRET_FILE));
    await rm(path.join(deployment.root, 'secret-b', 'host-secret-registered'));
    let refused: unknown;
    await startHost('secret-b', 'id-secret', 'mac:02:00:00:00:15:03').catch((error: unknown) => (refused = error));
    expect(refused).to.be.instanceOf(KeylimeHttpError);
    expect((refused as KeylimeHttpError).remoteHttpStatus).to.equal(403);
    expect((await admin.identity(again.uuid)).flagged_reason).to.include('another host secret');
  });

  it('a node answering with another secret fails its liveness check for good', async function () {
    const honest = await startHost('secret-c', 'id-secret', 'mac:02:00:00:00:15:04');
    await enrol(honest.uuid);
    const identity = await admin.identity(honest.uuid);
    // An impostor at the same address: the verifier is told another node's proof key.
    const other = await startHost('secret-d', 'id-secret', 'mac:02:00:00:00:15:05');
    const otherKey = (await admin.identity(other.uuid)).host_proof_key as string;
    await liveness.enrol(honest.uuid, { mode: 'id-secret', ip: identity.ip as string, port: identity.port as number, mtlsCert: identity.mtls_cert as string, proofKey: otherKey });
    const failed = await liveness.status(honest.uuid);
    expect(failed.liveness_status).to.equal('failed');
    expect(failed.last_failure).to.include('host-secret proof does not match');
    await deployment.verifier!.liveness.checkNow();
    expect((await liveness.status(honest.uuid)).liveness_status).to.equal('failed');
  });

  it('the tenant CLI prints how an agent registered (without the proof key) and lets an admin allow a mode change', async function () {
    const host = await startHost('only-cli', 'id-only', 'mac:02:00:00:00:15:06');
    const connection = ['--registrar', deployment.registrar.tlsUrl, '--data-dir', deployment.servicesDir];
    const trust = await runCli(['tenant', 'registrar', 'trust', '--uuid', host.uuid, ...connection]);
    expect(trust.code, trust.stderr).to.equal(0);
    const printed = JSON.parse(trust.stdout) as Record<string, unknown>;
    expect(printed).to.include({ agent_id: host.uuid, identity_mode: 'id-only', trust_level: 'id-only', mode_change_to: null });
    expect(printed).to.not.have.property('host_proof_key');
    const allowed = await runCli(['tenant', 'registrar', 'allow-mode', '--uuid', host.uuid, '--mode', 'id-secret', ...connection]);
    expect(allowed.code, allowed.stderr).to.equal(0);
    expect((await admin.identity(host.uuid)).mode_change_to).to.equal('id-secret');
    const bad = await runCli(['tenant', 'registrar', 'allow-mode', '--uuid', host.uuid, '--mode', 'tpm2', ...connection]);
    expect(bad.code).to.not.equal(0);
  });
});
