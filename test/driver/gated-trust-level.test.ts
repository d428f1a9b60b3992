import { expect } from 'chai';
import { AttestationFailed } from '../../interfaces/errors.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { keylimeTestNode, rejection } from './driver-test-node.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00041';
const OTHER = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00042';
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 1, statusPollIntervalSeconds: 1 } });
const CERT = '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n';

function registered(agentId: string, level: 'hardware-tpm' | 'id-only'): [number, unknown] {
  const mode = level === 'id-only' ? 'id-only' : 'tpm';
  return [200, { agent_id: agentId, ek_tpm: null, ekcert: null, aik_tpm: null, mtls_cert: CERT, ip: '127.0.0.1', port: 9002, regcount: 1, identity_mode: mode, trust_level: level }];
}

function identity(agentId: string): [number, unknown] {
  return [200, { agent_id: agentId, identity_mode: 'id-only', trust_level: 'id-only', host_id_hash: null, host_proof_key: null, mode_change_to: null, flagged_reason: null, mtls_cert: CERT, ip: '127.0.0.1', port: 9002 }];
}

/**
 * The start hooks gate a step on `trustLevel` (the registrar's level), then call `startAttestation`,
 * which chooses liveness checks or a TPM enrolment by the level. Read twice, the two could differ (a
 * registration changed between them, or the locator named another agent), and the node would be
 * enrolled on a level the gate never judged: a TPM-level gate passed, then checked for liveness only.
 */
describe('keylime driver: the trust level the gate read is the one the step enrols on', function () {
  this.timeout(30_000);
  const { fake, info } = useFakeKeylime('ironlime-gated-trust-level-', ALLOWLIST, AGENT);

  it('a registrar that answers another level after the gate does not turn the node into a liveness enrolment', async function () {
    let reads = 0;
    fake.routes.set(`GET /registrar/v2.1/agents/${AGENT}`, () => {
      reads += 1;
      return registered(AGENT, reads === 1 ? 'hardware-tpm' : 'id-only');
    });
    fake.routes.set(`GET /registrar/v2.1/agents/${AGENT}/identity`, () => identity(AGENT));
    fake.routes.set(`POST /v2.3/liveness/${AGENT}`, () => [200, {}]);
    const driver = new KeylimeAttestation({ ekCheck: 'off' });
    const task = createTask(keylimeTestNode(info), CONFIG);
    expect(await driver.trustLevel(task)).to.equal('hardware-tpm');
    await driver.startAttestation(task).catch(() => undefined);
    expect(fake.requests).to.not.include(`POST /v2.3/liveness/${AGENT}`);
  });

  it('an agent the locator names after the gate is refused: the gate judged another agent', async function () {
    delete info['keylime_agent_uuid'];
    fake.routes.set(`GET /registrar/v2.1/agents/${AGENT}`, () => registered(AGENT, 'hardware-tpm'));
    fake.routes.set(`GET /registrar/v2.1/agents/${OTHER}`, () => registered(OTHER, 'id-only'));
    fake.routes.set(`GET /registrar/v2.1/agents/${OTHER}/identity`, () => identity(OTHER));
    fake.routes.set(`POST /v2.3/liveness/${OTHER}`, () => [200, {}]);
    const reports = [AGENT, OTHER];
    const driver = new KeylimeAttestation({ ekCheck: 'off', agentLocator: async () => ({ uuid: reports.shift() ?? OTHER }) });
    const task = createTask(keylimeTestNode(info), CONFIG);
    expect(await driver.trustLevel(task)).to.equal('hardware-tpm');
    const refused = await rejection(driver.startAttestation(task));
    expect(refused, refused.message).to.be.instanceOf(AttestationFailed);
    expect((refused as AttestationFailed).reasons.join()).to.include(`read for agent ${AGENT}`);
    expect(fake.requests).to.not.include(`POST /v2.3/liveness/${OTHER}`);
  });
});
