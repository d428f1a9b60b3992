import { expect } from 'chai';
import { InvalidParameterValue, TrustLevelTooLow } from '../../interfaces/errors.js';
import type { Node } from '../../interfaces/node.js';
import type { Task } from '../../interfaces/task.js';
import type { FakeAttestation } from '../../drivers/fake/fake-attestation.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { AttestationHooks } from '../../lib/provisioning/attestation-hooks.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { DriverRegistry } from '../../lib/provisioning/driver-registry.js';
import { NodeStore } from '../../lib/provisioning/node-store.js';
import { createProvisioningContainer } from '../../lib/provisioning/provisioning-container.js';
import { forEachDatabase, type DatabaseFixture } from '../helpers/databases.js';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function setup(fixture: DatabaseFixture, config: Record<string, unknown> = {}) {
  const built = buildConfig({ enabledAttestationInterfaces: ['no-attestation', 'fake'], defaultAttestationInterface: 'fake', ...config });
  const container = createProvisioningContainer({ config: built, database: fixture.database });
  return {
    hooks: container.resolve(AttestationHooks),
    store: container.resolve(NodeStore),
    fake: container.resolve(DriverRegistry).get('fake') as FakeAttestation,
    task: (node: Node): Task => createTask(node, built, { logger: quiet }),
  };
}

async function refusal(promise: Promise<unknown>): Promise<TrustLevelTooLow> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(TrustLevelTooLow);
    return error as TrustLevelTooLow;
  }
  throw new Error('expected TrustLevelTooLow');
}

forEachDatabase(
  'the provisioning gate decides by trust level (issue 15)',
  (fixture) => {
    it('by default an id-secret node is cleaned but refused deploy, before anything is enrolled, with its level and the minimum', async function () {
      const s = setup(fixture);
      const node = await s.store.createNode({ driverInfo: { fake_trust_level: 'id-secret' } });
      const cleaned = await s.hooks.onCleanStart(s.task(node));
      expect(cleaned).to.include({ status: 'passed', trustLevel: 'id-secret' });
      s.fake.reset();
      const refused = await refusal(s.hooks.onDeployStart(s.task(node)));
      expect(refused).to.include({ code: 'ERR_TRUST_LEVEL_TOO_LOW', step: 'deploy', level: 'id-secret', minimum: 'hardware-tpm' });
      expect(refused.message).to.include('deploy needs trust level hardware-tpm;').and.include('this node is id-secret');
      // A new operator is told where the minimum came from and how to accept the node's level.
      expect(refused.message).to.include('the default minimum for deploy (attestation.minimumTrustLevel.deploy)');
      expect(refused.message).to.include(`NodeStore.acceptTrustLevel(uuid, 'id-secret', note)`).and.include('docs/identity.md');
      expect(s.fake.calls.map((call) => call.operation)).to.deep.equal(['validate']);
      const stored = await s.store.getNode(node.uuid);
      expect(stored.trust?.level).to.equal('id-secret');
      expect(stored.lastAttestation).to.include({ status: 'failed' });
      expect(stored.lastAttestation.reason).to.include('hardware-tpm');
    });

    it('a hardware TPM passes both steps; an emulated TPM is refused deploy by default', async function () {
      const s = setup(fixture);
      const hardware = await s.store.createNode({});
      await s.hooks.onCleanStart(s.task(hardware));
      expect(await s.hooks.onDeployStart(s.task(hardware))).to.include({ status: 'passed', trustLevel: 'hardware-tpm' });
      const emulated = await s.store.createNode({ driverInfo: { fake_trust_level: 'emulated-tpm' } });
      expect((await refusal(s.hooks.onDeployStart(s.task(emulated)))).level).to.equal('emulated-tpm');
    });

    it('attestation.minimumTrustLevel sets the minimum per step', async function () {
      const s = setup(fixture, { attestation: { minimumTrustLevel: { clean: 'id-secret', deploy: 'id-secret' } } });
      const only = await s.store.createNode({ driverInfo: { fake_trust_level: 'id-only' } });
      const configured = await refusal(s.hooks.onCleanStart(s.task(only)));
      expect(configured).to.include({ step: 'clean', minimum: 'id-secret', level: 'id-only' });
      expect(configured.message).to.include('the configured attestation.minimumTrustLevel.clean');
      const secret = await s.store.createNode({ driverInfo: { fake_trust_level: 'id-secret' } });
      expect(await s.hooks.onDeployStart(s.task(secret))).to.include({ status: 'passed' });
    });

    it('driver_info.keylime_minimum_trust_level overrides the configuration, and a bad value stops before any operation', async function () {
      const s = setup(fixture);
      const lowered = await s.store.createNode({ driverInfo: { fake_trust_level: 'id-secret', keylime_minimum_trust_level: 'id-secret' } });
      expect(await s.hooks.onDeployStart(s.task(lowered))).to.include({ status: 'passed', trustLevel: 'id-secret' });
      const raised = await s.store.createNode({ driverInfo: { fake_trust_level: 'emulated-tpm', keylime_minimum_trust_level: 'hardware-tpm' } });
      const raisedRefusal = await refusal(s.hooks.onCleanStart(s.task(raised)));
      expect(raisedRefusal.step).to.equal('clean');
      expect(raisedRefusal.message).to.include("this node's own minimum (driver_info.keylime_minimum_trust_level, else the level an operator accepted)");
      const bad = await s.store.createNode({ driverInfo: { keylime_minimum_trust_level: 'tpm' } });
      let error: unknown;
      await s.hooks.onDeployStart(s.task(bad)).catch((caught: unknown) => (error = caught));
      expect(error).to.be.instanceOf(InvalidParameterValue);
    });

    it('an operator accepts a lower level explicitly; the acceptance is recorded on the node and can be withdrawn', async function () {
      const s = setup(fixture);
      const node = await s.store.createNode({ driverInfo: { fake_trust_level: 'id-secret' } });
      let noNote: unknown;
      await s.store.acceptTrustLevel(node.uuid, 'id-secret', ' ').catch((error: unknown) => (noNote = error));
      expect(noNote).to.be.instanceOf(InvalidParameterValue);
      const accepted = await s.store.acceptTrustLevel(node.uuid, 'id-secret', 'alice: legacy rack 7 has no TPM, ticket 42');
      expect(accepted.trust?.accepted).to.include({ level: 'id-secret', note: 'alice: legacy rack 7 has no TPM, ticket 42' });
      expect(await s.hooks.onDeployStart(s.task(accepted))).to.include({ status: 'passed' });
      const withdrawn = await s.store.acceptTrustLevel(node.uuid, null);
      expect(withdrawn.trust?.accepted).to.equal(null);
      await refusal(s.hooks.onDeployStart(s.task(withdrawn)));
    });

    it('an acceptance holds for the agent it was given for: a driver_info naming another agent withdraws it', async function () {
      const s = setup(fixture);
      const agentA = `agent-a-${Date.now()}`;
      const node = await s.store.createNode({ driverInfo: { fake_trust_level: 'id-secret', keylime_agent_uuid: agentA } });
      await s.store.acceptTrustLevel(node.uuid, 'id-secret', 'alice: legacy rack 7 has no TPM, ticket 42');
      // Other driver_info changes for the same agent keep it.
      const same = await s.store.updateNode(node.uuid, { driverInfo: { fake_trust_level: 'id-secret', keylime_agent_uuid: agentA, fake_delay_ms: 0 } });
      expect(same.trust?.accepted).to.include({ level: 'id-secret' });
      expect(await s.hooks.onDeployStart(s.task(same))).to.include({ status: 'passed' });
      // Another machine's agent does not inherit it: the deploy minimum applies again.
      const moved = await s.store.updateNode(node.uuid, { driverInfo: { fake_trust_level: 'id-secret', keylime_agent_uuid: `agent-b-${Date.now()}` } });
      expect(moved.trust?.accepted).to.equal(null);
      await refusal(s.hooks.onDeployStart(s.task(moved)));
      // Clearing the agent (to store the ramdisk's next report) withdraws it as well.
      await s.store.acceptTrustLevel(node.uuid, 'id-secret', 'alice: the new board has no TPM either, ticket 43');
      expect((await s.store.updateNode(node.uuid, { driverInfo: { fake_trust_level: 'id-secret' } })).trust?.accepted).to.equal(null);
      // One given while no agent was named holds for the first agent named.
      await s.store.acceptTrustLevel(node.uuid, 'id-secret', 'alice: ticket 44');
      const first = await s.store.updateNode(node.uuid, { driverInfo: { fake_trust_level: 'id-secret', keylime_agent_uuid: agentA } });
      expect(first.trust?.accepted).to.include({ level: 'id-secret', note: 'alice: ticket 44' });
    });

    it("a driver_info minimum is not carried to another agent: a merge naming another agent, or none, is refused; set again once the agent is named, it holds", async function () {
      const s = setup(fixture);
      const agentA = `agent-a-${Date.now()}`;
      const agentB = `agent-b-${Date.now()}`;
      const lowered = { fake_trust_level: 'id-secret', keylime_minimum_trust_level: 'id-secret' };
      const node = await s.store.createNode({ driverInfo: { ...lowered, keylime_agent_uuid: agentA } });
      expect(await s.hooks.onDeployStart(s.task(node))).to.include({ status: 'passed' });
      // What an Ironic-style `node set --driver-info keylime_agent_uuid=…` writes: the stored fields, one changed.
      for (const driverInfo of [{ ...node.driverInfo, keylime_agent_uuid: agentB }, lowered, { ...lowered, keylime_agent_uuid: agentA.toUpperCase() }]) {
        let refused: unknown;
        await s.store.updateNode(node.uuid, { driverInfo }).catch((error: unknown) => (refused = error));
        expect(refused, JSON.stringify(driverInfo)).to.be.instanceOf(InvalidParameterValue);
        expect((refused as InvalidParameterValue).field).to.equal('driver_info.keylime_minimum_trust_level');
        expect((refused as Error).message).to.include(`the stored minimum goes with agent ${agentA}`);
      }
      const unchanged = await s.store.getNode(node.uuid);
      expect(unchanged.driverInfo).to.deep.equal(node.driverInfo);
      // Named without it, the new agent's node gets the configured minimum; set again for it, the lower one holds.
      const moved = await s.store.updateNode(node.uuid, { driverInfo: { fake_trust_level: 'id-secret', keylime_agent_uuid: agentB } });
      await refusal(s.hooks.onDeployStart(s.task(moved)));
      const accepted = await s.store.updateNode(node.uuid, { driverInfo: { ...lowered, keylime_agent_uuid: agentB } });
      expect(await s.hooks.onDeployStart(s.task(accepted))).to.include({ status: 'passed' });
      // A minimum set while no agent is named holds for the first agent named (as the keylime driver stores a report).
      const unnamed = await s.store.createNode({ driverInfo: lowered });
      expect((await s.store.updateNode(unnamed.uuid, { driverInfo: { ...lowered, keylime_agent_uuid: `agent-c-${Date.now()}` } })).driverInfo).to.include(lowered);
    });

    it('with the deploy fail flag off, a node below the minimum is recorded and logged, and attestation goes on', async function () {
      const s = setup(fixture, { keylime: { failDeployOnAttestationFailure: false } });
      const node = await s.store.createNode({ driverInfo: { fake_trust_level: 'id-only' } });
      const outcome = await s.hooks.onDeployStart(s.task(node));
      expect(s.fake.calls.map((call) => call.operation)).to.include('startAttestation');
      // The attestation itself passed, but what is stored and returned still says the node is below the minimum.
      expect(outcome).to.include({ status: 'failed', trustLevel: 'id-only', recorded: true });
      expect(outcome.reasons[0]).to.include('deploy needs trust level hardware-tpm;');
      const stored = await s.store.getNode(node.uuid);
      expect(stored.lastAttestation).to.include({ status: 'failed', reason: outcome.reasons[0] });
      // The end of the step judges the level its start stored: it does not record a pass either.
      const ended = await s.hooks.onDeployEnd(s.task(stored));
      expect(ended).to.include({ status: 'failed', recorded: true });
      expect((await s.store.getNode(node.uuid)).lastAttestation).to.include({ status: 'failed', reason: outcome.reasons[0] });
      // Cleaning needs less: its end passes.
      expect(await s.hooks.onCleanEnd(s.task(stored))).to.include({ status: 'passed' });
    });

    it('an end hook on a node whose start stored no level asks the driver: an id-only node does not pass deploy-end', async function () {
      const s = setup(fixture, { keylime: { failDeployOnAttestationFailure: false } });
      // No start hook ran (or its level read failed, flag off): nothing stored to judge.
      const node = await s.store.createNode({ driverInfo: { fake_trust_level: 'id-only' } });
      const ended = await s.hooks.onDeployEnd(s.task(node));
      expect(ended).to.include({ status: 'failed', trustLevel: 'id-only', recorded: true });
      expect(ended.reasons[0]).to.include('deploy needs trust level hardware-tpm;');
      const stored = await s.store.getNode(node.uuid);
      expect(stored.trust?.level).to.equal('id-only');
      expect(stored.lastAttestation).to.include({ status: 'failed' });
    });

    it("a level stored for one agent is not the next agent's: a driver_info naming another agent clears it, and the end hook asks again", async function () {
      const s = setup(fixture, { keylime: { failDeployOnAttestationFailure: false } });
      const node = await s.store.createNode({ driverInfo: { fake_trust_level: 'hardware-tpm', keylime_agent_uuid: `agent-a-${Date.now()}` } });
      expect(await s.hooks.onDeployStart(s.task(node))).to.include({ status: 'passed', trustLevel: 'hardware-tpm' });
      // Between the step's hooks the node is pointed at another agent (an operator, or a ramdisk's stored report).
      const moved = await s.store.updateNode(node.uuid, { driverInfo: { fake_trust_level: 'id-only', keylime_agent_uuid: `agent-b-${Date.now()}` } });
      expect(moved.trust?.level).to.equal(null);
      const ended = await s.hooks.onDeployEnd(s.task(moved));
      expect(ended).to.include({ status: 'failed', trustLevel: 'id-only' });
      // The same agent keeps its level.
      const same = await s.store.updateNode(node.uuid, { driverInfo: { ...moved.driverInfo, fake_delay_ms: 0 } });
      expect(same.trust?.level).to.equal('id-only');
    });

    it('a level read while the node is pointed at another agent is not stored for that agent: the end hook asks again', async function () {
      const s = setup(fixture, { keylime: { failDeployOnAttestationFailure: false } });
      const node = await s.store.createNode({ driverInfo: { fake_trust_level: 'hardware-tpm', keylime_agent_uuid: `agent-a-${Date.now()}` } });
      const read = s.fake.trustLevel.bind(s.fake);
      // An operator points the node at another agent while the first one's level is being read.
      s.fake.trustLevel = async (task) => {
        const level = await read(task);
        await s.store.updateNode(node.uuid, { driverInfo: { fake_trust_level: 'id-only', keylime_agent_uuid: `agent-b-${Date.now()}` } });
        return level;
      };
      let started;
      try {
        started = await s.hooks.onDeployStart(s.task(node));
      } finally {
        s.fake.trustLevel = read;
      }
      expect(started).to.include({ trustLevel: 'hardware-tpm' });
      const moved = await s.store.getNode(node.uuid);
      // Before, the first agent's level was written after the change had cleared the column, and the
      // end hook passed the id-only agent by it.
      expect(moved.trust?.level, "not stored as the new agent's").to.equal(null);
      const ended = await s.hooks.onDeployEnd(s.task(moved));
      expect(ended).to.include({ status: 'failed', trustLevel: 'id-only' });
    });

    it('with the fail flag off, a node below the minimum whose attestation also fails keeps both reasons', async function () {
      const s = setup(fixture, { keylime: { failDeployOnAttestationFailure: false } });
      const node = await s.store.createNode({ driverInfo: { fake_trust_level: 'emulated-tpm', fake_outcome: 'fail' } });
      const outcome = await s.hooks.onDeployStart(s.task(node));
      expect(outcome.status).to.equal('failed');
      expect(outcome.reasons).to.have.length.greaterThan(1);
      expect(outcome.reasons[0]).to.include('this node is emulated-tpm');
      expect((await s.store.getNode(node.uuid)).lastAttestation.reason).to.equal(outcome.reasons.join('; '));
    });
  },
  { migrate: true },
);
