import { expect } from 'chai';
import { AttestationFailed } from '../../interfaces/errors.js';
import type { Node } from '../../interfaces/node.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { keylimeTestNode, rejection } from './driver-test-node.js';
import { startLivenessDriverSetup, type LivenessDriverSetup } from './liveness-driver-info.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 2, statusPollIntervalSeconds: 1 } });
const NODE_A = '6b1f2e0d-1e8f-4b68-9f5a-7d8b5f2a3c21';
const NODE_B = '7c2a3f1e-2f90-4c79-8a6b-8e9c6a3b4d32';

/**
 * "One agent, one node" for nodes without a TPM: the driver against a real registrar and verifier
 * (liveness routes on PostgreSQL) and an id-only host agent. Node A enrols the agent; node B, whose
 * `driver_info` names the same agent (no node store here to refuse the second claim), must neither
 * read A's "alive", replace A's enrolment, nor remove it.
 */
describe('keylime driver: a liveness enrolment is bound to the node that made it', function () {
  this.timeout(60_000);
  let setup: LivenessDriverSetup;
  const driver = new KeylimeAttestation({ ekCheck: 'off' });

  before(async function () {
    setup = await startLivenessDriverSetup('id-only', 'mac:02:00:00:00:17:01', 'bound', ALLOWLIST);
  });

  after(async function () {
    await setup?.close();
  });

  const nodeNamed = (uuid: string): Node => ({ ...keylimeTestNode(setup.driverInfo), uuid, trust: { level: 'id-only', accepted: null } });
  const task = (uuid: string) => createTask(nodeNamed(uuid), CONFIG);

  it("binds the agent to node A: A's flow passes, B is refused on status and start, and B's unregister leaves A's enrolment", async function () {
    const { host, liveness } = setup;
    await driver.startAttestation(task(NODE_A));
    const enrolled = await liveness.status(host.uuid);
    expect(JSON.parse(enrolled.metadata ?? '{}')).to.deep.equal({ node: NODE_A });
    await driver.validateSecurityStatus(task(NODE_A));

    const status = await rejection(driver.validateSecurityStatus(task(NODE_B)));
    expect(status).to.be.instanceOf(AttestationFailed);
    expect((status as AttestationFailed).reasons.join()).to.include(`for node ${NODE_A}, not for node ${NODE_B}: refused`);

    const start = await rejection(driver.startAttestation(task(NODE_B)));
    expect(start).to.be.instanceOf(AttestationFailed);
    expect((start as AttestationFailed).reasons.join()).to.include(`for node ${NODE_A}, not for node ${NODE_B}: refused`);
    expect(JSON.parse((await liveness.status(host.uuid)).metadata ?? '{}')).to.deep.equal({ node: NODE_A });

    await driver.unregisterNode(task(NODE_B));
    expect((await liveness.status(host.uuid)).liveness_status).to.equal('alive');
    await driver.validateSecurityStatus(task(NODE_A));

    await driver.startAttestation(task(NODE_A));
    await driver.validateSecurityStatus(task(NODE_A));
    await driver.unregisterNode(task(NODE_A));
    const gone = await rejection(liveness.status(host.uuid));
    expect(gone).to.be.instanceOf(KeylimeHttpError);
    expect((gone as KeylimeHttpError).remoteHttpStatus).to.equal(404);
  });

  it('leaves alone a liveness enrolment made without a node (by hand, or before the binding): refused, not replaced, not removed', async function () {
    const { deployment, host, liveness } = setup;
    const admin = new RegistrarClient({ baseUrl: deployment.registrar.tlsUrl, tls: { ca: deployment.registrar.caCert, cert: deployment.tenantTls.cert, key: deployment.tenantTls.key } });
    try {
      const identity = await admin.identity(host.uuid);
      await liveness.enrol(host.uuid, { mode: 'id-only', ip: identity.ip as string, port: identity.port as number, mtlsCert: identity.mtls_cert as string, proofKey: null });
    } finally {
      admin.close();
    }
    const unbound = `agent ${host.uuid} is enrolled for liveness checks with the verifier not by this driver for a node, not for node ${NODE_A}: refused`;
    expect(((await rejection(driver.validateSecurityStatus(task(NODE_A)))) as AttestationFailed).reasons).to.deep.equal([unbound]);
    expect(((await rejection(driver.startAttestation(task(NODE_A)))) as AttestationFailed).reasons).to.deep.equal([unbound]);
    await driver.unregisterNode(task(NODE_A));
    const kept = await liveness.status(host.uuid);
    expect(kept.metadata).to.equal('{}');
    await liveness.remove(host.uuid);
  });
});
