import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { IronlimeConfig } from '../../lib/config/ironlime-config.js';
import { evilFile, knownGoodFiles, type DemoFile } from '../../lib/demo/demo-catalog.js';
import { startDemoEnvironment, type DemoEnvironment, type DemoPushNode } from '../../lib/demo/demo-environment.js';
import { demoConfig } from '../../lib/demo/demo-config.js';
import { waitForVerifierFailure } from '../../lib/demo/verifier-watch.js';
import { ExampleOrchestrator, STATES } from '../../lib/provisioning/example-orchestrator.js';
import type { DriverInfo } from '../../interfaces/node.js';
import { VerifierClient } from '../../lib/verifier/verifier-client.js';

/**
 * The keylime driver with a push-model node (issue 13): the example orchestrator, the real registrar and
 * verifier (PGlite, fresh CA) and two emulated push nodes on the software TPM that open no port.
 */
describe('keylime driver with push-model nodes (software TPM)', function () {
  this.timeout(120_000);
  let dir: string;
  let env: DemoEnvironment;
  let orchestrator: ExampleOrchestrator;
  let verifier: VerifierClient;
  let good: DemoPushNode;
  let tampered: DemoPushNode;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-push-driver-'));
    env = await startDemoEnvironment({ dir, tpmKind: 'software', nodeCount: 0, pushNodeCount: 2, quoteIntervalSeconds: 1, imaGrowthMs: 0 });
    [good, tampered] = env.pushNodes as [DemoPushNode, DemoPushNode];
    orchestrator = await ExampleOrchestrator.create({ config: config(), database: env.database, keylime: { extraEkCaDirs: [env.ekCaDir] } });
    const pem = (file: string): string => readFileSync(file, 'utf8');
    verifier = new VerifierClient({ baseUrl: env.verifier.url, tls: { ca: pem(env.tls.caFile), cert: pem(env.tls.certFile), key: pem(env.tls.keyFile) } });
  });

  after(async function () {
    verifier?.close();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (): Readonly<IronlimeConfig> => demoConfig(env, dir);

  function driverInfo(node: DemoPushNode): DriverInfo {
    return {
      keylime_allowlist: env.policies.allowlist.path,
      keylime_allowlist_checksum: env.policies.allowlist.sha256,
      keylime_mb_refstate: env.policies.refstate.path,
      keylime_mb_refstate_checksum: env.policies.refstate.sha256,
      keylime_agent_uuid: node.agent.uuid,
      keylime_agent_mode: 'push',
    };
  }

  it('refuses an unknown keylime_agent_mode when the node is enrolled', async function () {
    // Its own agent id: the refused node stays in the store, and an agent two nodes name is refused.
    const badMode = { ...driverInfo(good), keylime_agent_uuid: 'bad-mode-agent', keylime_agent_mode: 'poll' };
    const error = await orchestrator.enrollNode({ name: 'bad-mode', attestationInterface: 'keylime', driverInfo: badMode }).then(
      () => undefined,
      (caught: unknown) => caught as Error,
    );
    expect(error?.message).to.contain('keylime_agent_mode');
  });

  it('cleans and deploys a good push node (no address or port in driver_info)', async function () {
    const node = await orchestrator.enrollNode({ name: 'good', attestationInterface: 'keylime', driverInfo: driverInfo(good) });
    expect((await orchestrator.clean(node.uuid)).provisionState).to.equal(STATES.available);
    await good.run(knownGoodFiles()[3] as DemoFile);
    const deployed = await orchestrator.deploy(node.uuid);
    expect(deployed.provisionState).to.equal(STATES.active);
    expect(deployed.lastAttestation.status).to.equal('passed');
    const status = await verifier.status(good.agent.uuid);
    expect(status.attestation_count).to.be.greaterThan(0);
  });

  it('fails the deploy of a tampered push node', async function () {
    const node = await orchestrator.enrollNode({ name: 'tampered', attestationInterface: 'keylime', driverInfo: driverInfo(tampered) });
    expect((await orchestrator.clean(node.uuid)).provisionState).to.equal(STATES.available);
    await tampered.run(evilFile());
    expect(await waitForVerifierFailure(env, tampered.agent.uuid, 30_000)).to.contain('ima.validation.ima-ng.not_in_allowlist');
    const refused = await orchestrator.deploy(node.uuid);
    expect(refused.provisionState).to.equal(STATES.deployFailed);
    expect(refused.lastAttestation.eventIds).to.include('ima.validation.ima-ng.not_in_allowlist');
  });
});
