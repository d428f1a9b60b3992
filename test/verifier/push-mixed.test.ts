import { expect } from 'chai';
import type { RunningAgent } from '../../lib/agent/agent-server.js';
import { startPushAgent, type RunningPushAgent } from '../../lib/agent/push/push-agent-server.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { TenantClient } from '../../lib/tenant/tenant-client.js';
import type { RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { createDeployment, digestOf, eventually, policyForAgent, policyForImaLog, refstateForAgent, type Deployment } from './helpers/verifier-fixture.js';

/**
 * Issue 13: one verifier process holds a pull agent and a push agent at once, the mode chosen at
 * enrolment. Both attest on their own path (the verifier polls the pull agent; the push agent sends
 * its evidence), and tampering on one node fails that node only. Software TPMs, PostgreSQL schema.
 */
describe('one verifier with a pull agent and a push agent at once (issue 13)', function () {
  this.timeout(90_000);
  let deployment: Deployment;
  let verifier: RunningVerifier;
  let tenant: TenantClient;
  let pull: RunningAgent;
  let push: RunningPushAgent;

  before(async function () {
    deployment = await createDeployment();
    // A long push timeout: silence is not in question here, and a loaded machine must not fail the push agent.
    verifier = await deployment.startVerifier({ quoteInterval: 1, pushTimeout: 60 });
    pull = await deployment.startAgent('pull-node');
    push = await startPushAgent(deployment.pushAgentInput('push-node', verifier.url));
    tenant = deployment.tenant();
    const refstate = refstateForAgent(pull);
    expect((await tenant.addAgent(pull.uuid, { runtimePolicy: policyForAgent(pull), mbPolicy: refstate })).agentId).to.equal(pull.uuid);
    expect((await tenant.addPushAgent(push.uuid, { runtimePolicy: policyForImaLog(push.imaLogPath), mbPolicy: refstate })).apiVersion).to.equal('3.0');
  });

  after(async function () {
    await push?.close();
    await deployment?.dispose();
  });

  const outcomes = async (uuid: string): Promise<string[]> => (await tenant.history(uuid, 200)).map((round) => round.outcome).reverse();
  const passes = async (uuid: string): Promise<number> => (await outcomes(uuid)).filter((o) => o === 'pass').length;

  it('both attest, each in its own mode: the verifier polls only the pull agent, the push agent sends its own rounds', async function () {
    await eventually('three passed rounds of each', async () => (await passes(pull.uuid)) >= 3 && (await passes(push.uuid)) >= 3, 60_000, 200);
    // The pull loop holds the pull agent alone: the push agent has no address to poll.
    expect(verifier.scheduler.size).to.equal(1);
    for (const uuid of [pull.uuid, push.uuid]) {
      expect(await outcomes(uuid), uuid).to.not.include('fail');
      expect(await tenant.getStatus(uuid)).to.include({ operational_state: OperationalState.GET_QUOTE, attestation_status: 'PASS' });
    }
  });

  it('IMA tampering on the pull node fails the pull agent only; the push agent keeps passing', async function () {
    await pull.appendIma('/tmp/pull-rootkit', digestOf('pull rootkit'));
    await eventually('the pull agent failed', async () => (await tenant.getStatus(pull.uuid)).attestation_status === 'FAIL', 30_000, 200);
    const pullFailure = (await tenant.history(pull.uuid, 200)).find((round) => round.outcome === 'fail');
    expect(pullFailure?.failures.map((f) => f.event_id)).to.include('ima.validation.ima-ng.not_in_allowlist');
    const pushPasses = await passes(push.uuid);
    await eventually('two more push passes after the pull failure', async () => (await passes(push.uuid)) >= pushPasses + 2, 30_000, 200);
    expect(await outcomes(push.uuid)).to.not.include('fail');
    expect(await tenant.getStatus(push.uuid)).to.include({ operational_state: OperationalState.GET_QUOTE, attestation_status: 'PASS' });
  });

  it('IMA tampering on the push node fails the push agent only; the pull agent\'s verdict is unchanged', async function () {
    await tenant.deleteAgent(pull.uuid, { timeoutMs: 20_000 });
    await tenant.addAgent(pull.uuid, { runtimePolicy: policyForAgent(pull, { '/tmp/pull-rootkit': digestOf('pull rootkit') }), mbPolicy: refstateForAgent(pull) });
    const pullBefore = (await outcomes(pull.uuid)).length;
    await eventually('the re-enrolled pull agent passing', async () => (await outcomes(pull.uuid)).slice(pullBefore).includes('pass'), 30_000, 200);
    await push.emulated?.measure([{ path: '/tmp/push-rootkit', content: new Uint8Array(Buffer.from('push rootkit')) }]);
    await eventually('the push agent failed', async () => (await tenant.getStatus(push.uuid)).attestation_status === 'FAIL', 30_000, 200);
    const pushFailure = (await tenant.history(push.uuid, 200)).find((round) => round.outcome === 'fail');
    expect(pushFailure?.failures.map((f) => f.event_id)).to.include('ima.validation.ima-ng.not_in_allowlist');
    const pullPasses = await passes(pull.uuid);
    await eventually('two more pull passes after the push failure', async () => (await passes(pull.uuid)) >= pullPasses + 2, 30_000, 200);
    expect((await outcomes(pull.uuid)).slice(pullBefore)).to.not.include('fail');
    expect(await tenant.getStatus(pull.uuid)).to.include({ operational_state: OperationalState.GET_QUOTE, attestation_status: 'PASS' });
  });
});
