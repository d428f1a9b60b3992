import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { createDeployment, eventually, policyForAgent, type Deployment } from './helpers/verifier-fixture.js';

describe('verifier: an agent that refuses the stored API version is renegotiated (spec §0.2)', function () {
  this.timeout(60_000);
  let deployment: Deployment;

  before(async function () {
    deployment = await createDeployment();
  });

  after(async function () {
    await deployment?.dispose();
  });

  it('asks GET /version, polls at the highest common version without failing the agent, and stores it', async function () {
    const first = await deployment.startVerifier();
    const tenant = deployment.tenant();
    const agent = await deployment.startAgent('old-version');
    await tenant.addAgent(agent.uuid, { runtimePolicy: policyForAgent(agent) });
    await tenant.waitForState(agent.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 15_000 });
    const repository = first.container.resolve(VerifierAgentRepository);
    await first.close();
    // The agent serves 2.1–2.6: an enrolment that says 2.0 makes it answer 400 "API version not supported: v2.0".
    const rowVersion = (await repository.find(agent.uuid))?.rowVersion;
    expect(await repository.updateSupportedVersion(agent.uuid, first.owner, rowVersion ?? '', '2.0')).to.be.a('string');
    const countBefore = (await repository.find(agent.uuid))?.state.attestationCount ?? 0;

    const second = await deployment.startVerifier();
    await eventually('the agent to be attested again', async () => ((await repository.find(agent.uuid))?.state.attestationCount ?? 0) > countBefore + 1);
    const record = await repository.find(agent.uuid);
    expect(record?.supportedVersion).to.equal('2.6');
    expect(record?.state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect((await deployment.tenant(second.url).history(agent.uuid, 50)).every((round) => round.outcome === 'pass')).to.equal(true);
  });
});
