import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { buildConfig } from '../../lib/config/load-config.js';
import { ExampleOrchestrator, NodeBusy, STATES } from '../../lib/provisioning/example-orchestrator.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { rejection } from './driver-test-node.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';
import { NO_ANSWER } from './fake-keylime.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;

/**
 * A ramdisk's report stored into `driver_info` (`reportAgent` with `store`) while a step runs on the
 * node re-pointed it between the step's hooks, or between its passing deploy and the secret's release,
 * which then went to the agent named last: refused as another step is (Ironic's node lock).
 */
describe('example orchestrator: no stored agent report while a step runs on the node', function () {
  this.timeout(30_000);
  const { fake, info } = useFakeKeylime('ironlime-report-busy-', ALLOWLIST, 'agent-A');
  let database: OpenedDatabase;
  let dir: string;

  before(async function () {
    database = await openTestSchema();
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-report-busy-'));
  });

  after(async function () {
    await database?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses reportAgent with store during a deploy, leaving driver_info as the deploy found it; without store, and after the step, it is taken', async function () {
    const config = buildConfig({ dataDir: dir, enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 2, statusPollIntervalSeconds: 1 } });
    const orchestrator = await ExampleOrchestrator.create({ config, database: database.database, keylime: { requestTimeoutMs: 1500 } });
    // The registrar accepts the trust level read and never answers: the deploy is in progress until the request times out.
    fake.routes.set('GET /registrar/v2.1/agents/agent-A', () => NO_ANSWER);
    const node = await orchestrator.nodes.createNode({ name: `busy-report-${Date.now()}`, provisionState: STATES.available, attestationInterface: 'keylime', driverInfo: { ...info } });
    const deploying = orchestrator.deploy(node.uuid);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const refused = await rejection(orchestrator.reportAgent(node.uuid, { uuid: 'agent-B' }, { store: true }));
    expect(refused).to.be.instanceOf(NodeBusy);
    expect(refused.message).to.equal(`node ${node.uuid} is busy with a deploy: the agent report is refused; try again once it ends`);
    await orchestrator.reportAgent(node.uuid, { uuid: 'agent-B' });
    expect((await deploying).provisionState).to.equal(STATES.deployFailed);
    expect((await orchestrator.nodes.getNode(node.uuid)).driverInfo['keylime_agent_uuid']).to.equal('agent-A');
    const stored = await orchestrator.reportAgent(node.uuid, { uuid: 'agent-B' }, { store: true });
    expect(stored.driverInfo['keylime_agent_uuid']).to.equal('agent-B');
  });
});
