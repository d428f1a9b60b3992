import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ExampleOrchestrator, STATES } from '../../lib/provisioning/example-orchestrator.js';
import { AttestationServiceUnavailable, InvalidParameterValue } from '../../interfaces/errors.js';
import type { DriverInfo, Node } from '../../interfaces/node.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import type { IronlimeConfig } from '../../lib/config/ironlime-config.js';
import { evilFile, knownGoodFiles, type DemoFile } from '../../lib/demo/demo-catalog.js';
import { startDemoEnvironment, type DemoEnvironment, type DemoNode } from '../../lib/demo/demo-environment.js';
import { demoConfig } from '../../lib/demo/demo-config.js';
import { waitForVerifierFailure } from '../../lib/demo/verifier-watch.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { VerifierClient } from '../../lib/verifier/verifier-client.js';
import { closedPort } from '../helpers/ports.js';

/**
 * The keylime driver end to end: the example orchestrator with the built-in keylime driver against the
 * real registrar and verifier (PGlite, fresh CA) and two emulated nodes on swtpm, quote interval 1 s.
 */
describe('keylime driver end to end (swtpm)', function () {
  this.timeout(120_000);
  let dir: string;
  let env: DemoEnvironment;
  let strict: ExampleOrchestrator;
  let lenient: ExampleOrchestrator;
  let verifier: VerifierClient;
  let good: DemoNode;
  let tampered: DemoNode;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-driver-e2e-'));
    env = await startDemoEnvironment({ dir, tpmKind: 'swtpm', nodeCount: 2, quoteIntervalSeconds: 1, imaGrowthMs: 0 });
    [good, tampered] = env.nodes as [DemoNode, DemoNode];
    strict = await ExampleOrchestrator.create({ config: config(true), database: env.database, keylime: { extraEkCaDirs: [env.ekCaDir] } });
    lenient = await ExampleOrchestrator.create({ config: config(false), database: env.database, keylime: { extraEkCaDirs: [env.ekCaDir] } });
    const pem = (file: string): string => readFileSync(file, 'utf8');
    verifier = new VerifierClient({ baseUrl: env.verifier.url, tls: { ca: pem(env.tls.caFile), cert: pem(env.tls.certFile), key: pem(env.tls.keyFile) } });
  });

  after(async function () {
    verifier?.close();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
    expect(env.swtpmPids()).to.deep.equal([]);
  });

  const config = (failFlags: boolean): Readonly<IronlimeConfig> => demoConfig(env, dir, { failFlags, statusTimeoutSeconds: 20 });

  /** The Ironic spec's driver_info: a flat allowlist with its checksum, the agent, and the boot refstate. */
  function driverInfo(node: DemoNode): DriverInfo {
    return {
      keylime_allowlist: env.policies.allowlist.path,
      keylime_allowlist_checksum: env.policies.allowlist.sha256,
      keylime_mb_refstate: env.policies.refstate.path,
      keylime_mb_refstate_checksum: env.policies.refstate.sha256,
      keylime_agent_uuid: node.agent.uuid,
      keylime_agent_address: '127.0.0.1',
      keylime_agent_port: node.port,
    };
  }

  async function verifierKnows(agentId: string): Promise<boolean> {
    try {
      await verifier.status(agentId);
      return true;
    } catch (error) {
      if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) {
        return false;
      }
      throw error;
    }
  }

  function fakeNode(info: DriverInfo): Node {
    const now = new Date();
    return {
      uuid: '0b5c3a52-37c5-4d2e-9d7e-0f3f3a1c2b11',
      name: 'direct',
      provisionState: 'cleaning',
      attestationInterface: 'keylime',
      driverInfo: info,
      instanceInfo: {},
      lastAttestation: { status: null, reason: null, eventIds: [], at: null },
      createdAt: now,
      updatedAt: now,
    };
  }

  it('stops startAttestation on a wrong allowlist checksum before the agent is enrolled', async function () {
    const driver = new KeylimeAttestation({ extraEkCaDirs: [env.ekCaDir] });
    const wrong = { ...driverInfo(good), keylime_allowlist_checksum: '0'.repeat(64) };
    const error = await driver.startAttestation(createTask(fakeNode(wrong), config(true))).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).to.be.instanceOf(InvalidParameterValue);
    expect((error as InvalidParameterValue).field).to.equal('driver_info.keylime_allowlist_checksum');
    expect(await verifierKnows(good.agent.uuid)).to.equal(false);
  });

  it('cleans and deploys a good node', async function () {
    const node = await strict.enrollNode({ name: 'good', attestationInterface: 'keylime', driverInfo: driverInfo(good) });
    expect((await strict.clean(node.uuid)).provisionState).to.equal(STATES.available);
    // The IMA list grows with known-good software between the steps.
    await good.run(knownGoodFiles()[3] as DemoFile);
    const deployed = await strict.deploy(node.uuid);
    expect(deployed.provisionState).to.equal(STATES.active);
    expect(deployed.lastAttestation.status).to.equal('passed');
    expect(deployed.lastAttestation.eventIds).to.deep.equal([]);
    const status = await verifier.status(good.agent.uuid);
    expect(status.attestation_count).to.be.greaterThan(0);
    // PCR 10 for the runtime policy, 0-9 and 11-15 for the refstate.
    expect(status.tpm_policy).to.equal(JSON.stringify({ mask: '0xffff' }));
  });

  it('fails the deploy of a tampered node when the fail flags are on', async function () {
    const node = await strict.enrollNode({ name: 'tampered', attestationInterface: 'keylime', driverInfo: driverInfo(tampered) });
    expect((await strict.clean(node.uuid)).provisionState).to.equal(STATES.available);
    await tampered.run(evilFile());
    expect(await waitForVerifierFailure(env, tampered.agent.uuid, 30_000)).to.equal('ima.validation.ima-ng.not_in_allowlist, state 9');
    const refused = await strict.deploy(node.uuid);
    expect(refused.provisionState).to.equal(STATES.deployFailed);
    expect(refused.lastAttestation.status).to.equal('failed');
    expect(refused.lastAttestation.eventIds).to.include('ima.validation.ima-ng.not_in_allowlist');
    expect(refused.lastAttestation.reason).to.contain('File not found in allowlist: /tmp/evil');
  });

  it('only records the failure when the fail flags are off', async function () {
    // One agent, one node: the strict test's node gives the tampered agent up before another node names it.
    const previous = (await strict.nodes.listNodes()).find((candidate) => candidate.name === 'tampered') as Node;
    await strict.tearDown(previous.uuid);
    await strict.nodes.updateNode(previous.uuid, { driverInfo: Object.fromEntries(Object.entries(previous.driverInfo).filter(([field]) => field !== 'keylime_agent_uuid')) });
    const node = await lenient.enrollNode({ name: 'tampered-lenient', attestationInterface: 'keylime', driverInfo: driverInfo(tampered) });
    const cleaned = await lenient.clean(node.uuid);
    expect(cleaned.provisionState).to.equal(STATES.available);
    expect(cleaned.lastAttestation.status).to.equal('failed');
    expect(cleaned.lastAttestation.eventIds).to.include('ima.validation.ima-ng.not_in_allowlist');
    const deployed = await lenient.deploy(node.uuid);
    expect(deployed.provisionState).to.equal(STATES.active);
    expect(deployed.lastAttestation.status).to.equal('failed');
  });

  it('reports an unreachable verifier as AttestationServiceUnavailable', async function () {
    const port = await closedPort();
    const driver = new KeylimeAttestation({ extraEkCaDirs: [env.ekCaDir] });
    const task = createTask(fakeNode({ ...driverInfo(good), keylime_verifier_url: `https://127.0.0.1:${port}` }), config(true));
    const error = await driver.startAttestation(task).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).to.be.instanceOf(AttestationServiceUnavailable);
    // The first request asks the verifier for its API versions.
    expect((error as Error).message).to.contain(`https://127.0.0.1:${port}/version: unreachable: ECONNREFUSED`);
  });

  it('unregisters a node, and again without complaint', async function () {
    const node = (await strict.nodes.listNodes()).find((candidate) => candidate.name === 'good') as Node;
    expect((await strict.tearDown(node.uuid)).provisionState).to.equal(STATES.manageable);
    expect(await verifierKnows(good.agent.uuid)).to.equal(false);
    expect((await strict.tearDown(node.uuid)).provisionState).to.equal(STATES.manageable);
  });
});

