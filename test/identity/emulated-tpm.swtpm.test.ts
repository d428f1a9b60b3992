import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { createDeployment, policyForAgent, type Deployment } from '../verifier/helpers/verifier-fixture.js';

/**
 * `--identity emulated-tpm` on a real swtpm (issue 15): the agent's own swtpm, its random state
 * persisted in the data dir, registered and attested like a TPM but never counted as hardware.
 */
describe('emulated-tpm on swtpm: registered and attested like a TPM, trust level emulated-tpm', function () {
  this.timeout(90_000);
  let deployment: Deployment;
  let admin: RegistrarClient;

  before(async function () {
    deployment = await createDeployment();
    await deployment.startVerifier();
    admin = new RegistrarClient({ baseUrl: deployment.registrar.tlsUrl, tls: { ca: deployment.registrar.caCert, cert: deployment.tenantTls.cert, key: deployment.tenantTls.key } });
  });

  after(async function () {
    admin?.close();
    await deployment?.dispose();
  });

  it('registers as emulated-tpm, passes attestation, and keeps its EK across a restart from the same data dir', async function () {
    const agent = await deployment.startAgent('emulated', { tpm: 'swtpm', identity: 'emulated-tpm', hostId: 'mac:02:00:00:00:15:10' });
    const shown = await admin.show(agent.uuid);
    expect(shown).to.include({ identity_mode: 'emulated-tpm', trust_level: 'emulated-tpm' });
    const tenant = deployment.tenant();
    await tenant.addAgent(agent.uuid, { runtimePolicy: policyForAgent(agent) });
    const status = await tenant.waitForState(agent.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 30_000 });
    expect(status.operational_state).to.equal(OperationalState.GET_QUOTE);
    const ek = shown.ek_tpm;

    // The swtpm state lives in the data dir: a restart brings back the same EK, so the registrar accepts it.
    await agent.close();
    deployment.agents.splice(deployment.agents.indexOf(agent), 1);
    const again = await deployment.startAgent('emulated', { tpm: 'swtpm', identity: 'emulated-tpm', hostId: 'mac:02:00:00:00:15:10' });
    expect((await admin.show(again.uuid)).ek_tpm).to.equal(ek);

    // Coming back as id-only under the same host id is refused and flagged.
    let refused: unknown;
    await again.close();
    deployment.agents.splice(deployment.agents.indexOf(again), 1);
    await admin
      .identity(again.uuid)
      .then(async () => {
        const client = new RegistrarClient({ baseUrl: deployment.registrar.httpUrl });
        try {
          await client.registerHost(again.uuid, { mode: 'id-only', hostId: { kind: 'mac', value: '02:00:00:00:15:10' } });
        } finally {
          client.close();
        }
      })
      .catch((error: unknown) => (refused = error));
    expect(refused).to.have.property('remoteHttpStatus', 403);
    expect((await admin.identity(again.uuid)).flagged_reason).to.include('came back as id-only');
  });
});
