import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { BrokerAdminClient } from '../../lib/broker/broker-admin-client.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { ExampleOrchestrator, NodeBusy, STATES } from '../../lib/provisioning/example-orchestrator.js';
import { NodeSecretRelease } from '../../lib/provisioning/node-secret-release.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { rejection } from './driver-test-node.js';

/**
 * One clean, deploy or teardown at a time per node: a teardown that ran while a deploy's attestation
 * was in progress withdrew the secret and moved the node to `manageable`, then the deploy went on,
 * moved it `manageable -> active` and released a fresh secret to the torn-down node.
 */
describe('example orchestrator: one step at a time per node', function () {
  this.timeout(30_000);
  let database: OpenedDatabase;
  let dir: string;
  const calls: string[] = [];
  const broker = {
    revocationInForce: async () => null,
    deleteNode: async (id: string) => void calls.push(`deleteNode ${id}`),
    putNode: async (id: string) => void calls.push(`putNode ${id}`),
    reinstate: async () => undefined,
    putResource: async () => void calls.push('putResource'),
    deleteResource: async () => void calls.push('deleteResource'),
    revoke: async (id: string) => void calls.push(`revoke ${id}`),
  } as unknown as BrokerAdminClient;
  const secrets = new NodeSecretRelease({ broker, nodeRecord: async () => ({}) as never });
  let orchestrator: ExampleOrchestrator;
  let uuid: string;
  let agent = 0;

  before(async function () {
    database = await openTestSchema();
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-node-busy-'));
    orchestrator = await ExampleOrchestrator.create({ config: buildConfig({ dataDir: dir, enabledAttestationInterfaces: ['fake'] }), database: database.database, nodeSecrets: secrets });
  });

  after(async function () {
    await database?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  /** A cleaned node whose every attestation operation now takes 300 ms. */
  beforeEach(async function () {
    agent += 1;
    const driverInfo = { keylime_agent_uuid: `busy-agent-${agent}`, fake_outcome: 'pass' };
    uuid = (await orchestrator.enrollNode({ name: `busy-${agent}`, attestationInterface: 'fake', driverInfo })).uuid;
    await orchestrator.clean(uuid);
    await orchestrator.nodes.updateNode(uuid, { driverInfo: { ...driverInfo, fake_delay_ms: 300 } });
    calls.length = 0;
  });

  it('refuses a teardown while the deploy runs: the deploy ends as it would have, nothing released after a withdrawal', async function () {
    const deploying = orchestrator.deploy(uuid);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const refused = await rejection(orchestrator.tearDown(uuid));
    expect(refused).to.be.instanceOf(NodeBusy);
    expect(refused.message).to.equal(`node ${uuid} is busy with a deploy: the teardown is refused; try again once it ends`);
    expect((await deploying).provisionState).to.equal(STATES.active);
    expect(calls).to.deep.equal(['deleteResource', `deleteNode busy-agent-${agent}`, `putNode busy-agent-${agent}`, 'putResource']);
    calls.length = 0;
    expect((await orchestrator.tearDown(uuid)).provisionState).to.equal(STATES.manageable);
    expect(calls).to.deep.equal([`revoke busy-agent-${agent}`, 'deleteResource']);
  });

  it('refuses a second deploy and a clean while one runs; the node is free again after it', async function () {
    const deploying = orchestrator.deploy(uuid);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await rejection(orchestrator.deploy(uuid))).to.be.instanceOf(NodeBusy);
    expect(await rejection(orchestrator.clean(uuid))).to.be.instanceOf(NodeBusy);
    expect((await deploying).provisionState).to.equal(STATES.active);
    expect((await orchestrator.deploy(uuid)).provisionState).to.equal(STATES.active);
  });

  it('frees the node after a step that threw', async function () {
    await orchestrator.nodes.updateNode(uuid, { provisionState: STATES.enroll });
    expect(await rejection(orchestrator.deploy(uuid))).to.not.be.instanceOf(NodeBusy);
    expect((await orchestrator.tearDown(uuid)).provisionState).to.equal(STATES.manageable);
  });
});
