import { expect } from 'chai';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import type { RunningAgent } from '../../lib/agent/agent-server.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { UpdateLeftAgentUnenrolled, type TenantClient } from '../../lib/tenant/tenant-client.js';
import { rejection } from '../driver/driver-test-node.js';
import { createDeployment, policyForAgent, refstateForAgent, type Deployment } from '../verifier/helpers/verifier-fixture.js';

/**
 * `tenant update` deletes the old enrolment before it sends the new one: a new one the verifier
 * refuses by its policy names must be refused before that delete, or the agent is left enrolled nowhere
 * (seen: `--runtime-policy-name` with a typo, or naming the agent's own stored policy, which the delete removes).
 */
describe('tenant update: policy names the verifier would refuse cost nothing', function () {
  this.timeout(120_000);
  let deployment: Deployment;
  let agent: RunningAgent;
  let tenant: TenantClient;

  before(async function () {
    deployment = await createDeployment();
    const verifier = await deployment.startVerifier();
    agent = await deployment.startAgent('update-agent');
    tenant = deployment.tenant(verifier.url);
    // Stored under the agent's id (no name given), as Keylime does.
    await tenant.addAgent(agent.uuid, { runtimePolicy: policyForAgent(agent), mbPolicy: refstateForAgent(agent) });
    await tenant.addRuntimePolicy('taken', policyForAgent(agent));
  });

  after(async function () {
    await deployment?.dispose();
  });

  const stillEnrolled = async (): Promise<void> => {
    expect((await tenant.getStatus(agent.uuid)).operational_state).to.be.a('number');
    expect(await tenant.listRuntimePolicies()).to.include(agent.uuid);
    expect(await tenant.listMbPolicies()).to.include(agent.uuid);
  };

  for (const [what, options, field] of [
    ['a stored runtime policy the verifier does not hold', { runtimePolicyName: 'no-such-policy' }, 'runtime_policy_name'],
    ['a stored refstate the verifier does not hold', { mbPolicyName: 'no-such-refstate' }, 'mb_policy_name'],
    ["the agent's own stored runtime policy, which the delete removes", { runtimePolicyName: '<agent>' }, 'runtime_policy_name'],
    ["the agent's own stored refstate, which the delete removes", { mbPolicyName: '<agent>' }, 'mb_policy_name'],
    ['a new runtime policy under a name already stored', { runtimePolicy: '<policy>', runtimePolicyName: 'taken' }, 'runtime_policy_name'],
  ] as const) {
    it(`refuses ${what}, before deleting anything`, async function () {
      const given: Record<string, string> = {};
      for (const [key, value] of Object.entries(options)) {
        given[key] = value === '<agent>' ? agent.uuid : value === '<policy>' ? policyForAgent(agent) : value;
      }
      const error = await rejection(tenant.updateAgent(agent.uuid, given));
      expect(error).to.be.instanceOf(InvalidParameterValue);
      expect((error as InvalidParameterValue).field).to.equal(field);
      await stillEnrolled();
    });
  }

  it("refuses a new policy under the agent's id while another agent uses the one stored there, before deleting anything", async function () {
    // Another agent enrolled with the policies stored under the first one's id: the delete keeps them.
    const sharing = await deployment.startAgent('sharing-agent');
    try {
      await tenant.addAgent(sharing.uuid, { runtimePolicyName: agent.uuid, mbPolicyName: agent.uuid });
      expect((await tenant.showRuntimePolicy(agent.uuid)).agents_using).to.have.members([agent.uuid, sharing.uuid]);
      expect((await tenant.showMbPolicy(agent.uuid)).agents_using).to.have.members([agent.uuid, sharing.uuid]);
      for (const [options, field] of [
        [{ runtimePolicy: policyForAgent(agent) }, 'runtime_policy_name'],
        [{ runtimePolicyName: 'taken', mbPolicy: refstateForAgent(agent) }, 'mb_policy_name'],
      ] as const) {
        const error = await rejection(tenant.updateAgent(agent.uuid, options));
        expect(error, error.message).to.be.instanceOf(InvalidParameterValue);
        expect((error as InvalidParameterValue).field).to.equal(field);
        expect(error.message).to.include(`also used by agent ${sharing.uuid}`);
        await stillEnrolled();
      }
    } finally {
      await tenant.deleteAgent(sharing.uuid);
      await sharing.close();
    }
  });

  it('says so when it fails after the delete: the agent is then enrolled nowhere', async function () {
    const verifier = tenant.verifier;
    const addAgent = verifier.addAgent.bind(verifier);
    verifier.addAgent = () => Promise.reject(new KeylimeHttpError(`${deployment.verifier?.url}/v2.6/agents/${agent.uuid}`, 400, 'refused', {}));
    let error: Error;
    try {
      error = await rejection(tenant.updateAgent(agent.uuid, { runtimePolicy: policyForAgent(agent) }));
    } finally {
      verifier.addAgent = addAgent;
    }
    expect(error).to.be.instanceOf(UpdateLeftAgentUnenrolled);
    expect(error.message).to.match(new RegExp(`^agent ${agent.uuid} was deleted from the verifier but not enrolled again, so it is not attested now \\(add it again\\): .*400 refused$`));
    expect(error.cause).to.be.instanceOf(KeylimeHttpError);
    expect((await rejection(tenant.getStatus(agent.uuid))) as KeylimeHttpError).to.have.property('remoteHttpStatus', 404);
  });
  it('says so when the wait for the old enrolment to go fails: the verifier had accepted the delete', async function () {
    await tenant.addAgent(agent.uuid, { runtimePolicy: policyForAgent(agent) });
    const verifier = tenant.verifier;
    const status = verifier.status.bind(verifier);
    verifier.status = () => Promise.reject(new KeylimeHttpError(`${deployment.verifier?.url}/v2.6/agents/${agent.uuid}`, 503, 'busy', {}));
    let error: Error;
    try {
      // A short wait: the status answers 503 until the deadline, whose default (60 s) the test need not spend.
      error = await rejection(tenant.updateAgent(agent.uuid, { runtimePolicy: policyForAgent(agent) }, { timeoutMs: 2_000 }));
    } finally {
      verifier.status = status;
    }
    expect(error).to.be.instanceOf(UpdateLeftAgentUnenrolled);
    expect(error.message).to.match(new RegExp(`^agent ${agent.uuid} was deleted from the verifier but not enrolled again, so it is not attested now \\(add it again\\): .*503 busy$`));
    // The delete went on without the tenant: the agent is enrolled nowhere.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const gone = await tenant.getStatus(agent.uuid).then(
        () => false,
        (e: unknown) => e instanceof KeylimeHttpError && e.remoteHttpStatus === 404,
      );
      if (gone) break;
      expect(Date.now()).to.be.below(deadline);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });
});
