import { expect } from 'chai';
import { AttestationFailed } from '../../interfaces/errors.js';
import type { Node } from '../../interfaces/node.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { keylimeTestNode, rejection } from './driver-test-node.js';
import { startLivenessDriverSetup, type LivenessDriverSetup } from './liveness-driver-info.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 2, statusPollIntervalSeconds: 1 } });
const NODE = '8d3b4a2f-3a01-4d8a-9b7c-9fad7b4c5e43';

/**
 * "A failed verdict stays failed: a retry does not re-enrol the node and wipe its verdict"
 * (docs/keylime-driver.md) holds for nodes without a TPM too. `startAttestation` re-enrolled every
 * liveness node it had enrolled, so a retried step wiped a `failed` (a wrong host-secret proof: an
 * impostor, or a foreign secret) and the node could pass on the next answer.
 */
describe('keylime driver: a failed liveness verdict survives a retried start', function () {
  this.timeout(60_000);
  let setup: LivenessDriverSetup;
  let admin: RegistrarClient;
  const driver = new KeylimeAttestation({ ekCheck: 'off' });

  before(async function () {
    setup = await startLivenessDriverSetup('id-secret', 'mac:02:00:00:00:18:01', 'failed', ALLOWLIST);
    const { deployment } = setup;
    admin = new RegistrarClient({ baseUrl: deployment.registrar.tlsUrl, tls: { ca: deployment.registrar.caCert, cert: deployment.tenantTls.cert, key: deployment.tenantTls.key } });
  });

  after(async function () {
    admin?.close();
    await setup?.close();
  });

  const node = (): Node => ({ ...keylimeTestNode(setup.driverInfo), uuid: NODE, trust: { level: 'id-secret', accepted: null } });
  const task = () => createTask(node(), CONFIG);

  it('keeps the failed enrolment on a retried startAttestation, so validateSecurityStatus still fails; a teardown starts afresh', async function () {
    await driver.startAttestation(task());
    await driver.validateSecurityStatus(task());

    // This node's enrolment, checked against a proof key that is not the host's: its answers fail it, as an impostor's would.
    const { host, liveness } = setup;
    const identity = await admin.identity(host.uuid);
    await liveness.enrol(host.uuid, { mode: 'id-secret', ip: identity.ip as string, port: identity.port as number, mtlsCert: identity.mtls_cert as string, proofKey: 'ab'.repeat(32), metadata: { node: NODE } });
    expect((await liveness.status(host.uuid)).liveness_status).to.equal('failed');
    expect(await rejection(driver.validateSecurityStatus(task()))).to.be.instanceOf(AttestationFailed);

    await driver.startAttestation(task());
    const kept = await liveness.status(host.uuid);
    expect(kept.liveness_status, 'the retry wiped the failed verdict').to.equal('failed');
    const status = await rejection(driver.validateSecurityStatus(task()));
    expect(status).to.be.instanceOf(AttestationFailed);
    expect((status as AttestationFailed).reasons.join()).to.include('host-secret proof does not match');

    await driver.unregisterNode(task());
    await driver.startAttestation(task());
    await driver.validateSecurityStatus(task());
  });
});
