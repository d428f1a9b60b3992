import { expect } from 'chai';
import type { RunningAgent } from '../../lib/agent/agent-server.js';
import { BadRemoteReplyError } from '../../lib/http/client-errors.js';
import { deleteRegistrarAgent } from '../../lib/tenant/registrar-agents.js';
import type { TenantClient } from '../../lib/tenant/tenant-client.js';
import { rejection } from '../driver/driver-test-node.js';
import { createDeployment, policyForAgent, type Deployment } from '../verifier/helpers/verifier-fixture.js';

/**
 * A registrar serves `GET` and `DELETE /v2.x/agents/{id}` on its TLS port as a verifier does on its own,
 * so `--verifier https://host:8891` (the registrar's port for the verifier's 8881) was read as a push
 * agent's empty status ("pending"), and `tenant delete` or `update` there removed the agent's
 * registration while printing "deleted agent … from the verifier".
 */
describe('tenant: a verifier URL that names the registrar, and the other way round', function () {
  this.timeout(120_000);
  let deployment: Deployment;
  let agent: RunningAgent;
  let tenant: TenantClient;
  const refusal = "it is a registrar's record of the agent (aik_tpm, ek_tpm, regcount), not a verifier's status: the verifier URL points at a registrar";

  before(async function () {
    deployment = await createDeployment();
    agent = await deployment.startAgent('misdirected-agent');
    tenant = deployment.tenant(deployment.registrar.tlsUrl);
  });

  after(async function () {
    await deployment?.dispose();
  });

  it('status is refused as a registrar record, not read as a pending agent', async function () {
    for (const read of [tenant.judgeStatus(agent.uuid), tenant.getStatus(agent.uuid)]) {
      const error = await rejection(read);
      expect(error).to.be.instanceOf(BadRemoteReplyError);
      expect((error as Error).message).to.include(refusal);
    }
  });

  it('delete and update are refused before any DELETE: the registration stays', async function () {
    const deleted = await rejection(tenant.deleteAgent(agent.uuid, { timeoutMs: 2000 }));
    expect((deleted as Error).message).to.include(refusal);
    const updated = await rejection(tenant.updateAgent(agent.uuid, { runtimePolicy: policyForAgent(agent) }, { timeoutMs: 2000 }));
    expect((updated as Error).message).to.include(refusal);
    expect(await tenant.registrar.list()).to.include(agent.uuid);
  });

  // The mirror mistake: the verifier's URL given as the registrar's (8881 for 8891).
  it('a registrar delete sent to the verifier is refused before any DELETE: the enrolment stays', async function () {
    const verifier = await deployment.startVerifier();
    const operator = deployment.tenant(verifier.url);
    await operator.addAgent(agent.uuid, { runtimePolicy: policyForAgent(agent) });
    const misdirected = deployment.tenant(verifier.url, { registrarUrl: verifier.url });
    const error = await rejection(deleteRegistrarAgent(misdirected.registrar, agent.uuid));
    expect(error).to.be.instanceOf(BadRemoteReplyError);
    expect((error as Error).message).to.include("it is a verifier's status of the agent (operational_state, attestation_count, verifier_id), not a registrar's record: the registrar URL points at a verifier");
    expect(await operator.listAgents()).to.include(agent.uuid);
    expect(await operator.registrar.list()).to.include(agent.uuid);
  });
});
