import { expect } from 'chai';
import { AttestationFailed } from '../../interfaces/errors.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { keylimeTestNode, rejection } from './driver-test-node.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00031';
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 1, statusPollIntervalSeconds: 1 } });
const CERT = '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n';

/**
 * The driver enrols a node for liveness checks when the registrar's `GET /agents/{id}` gives a level
 * without integrity evidence, then reads the address and mode from `GET /agents/{id}/identity`. Between
 * the two reads the agent may have registered again with a TPM (an admin allowed the mode change): a
 * TPM mode there must not be enrolled as `id-only` (checked for an answer only, where it must be
 * attested), but refused.
 */
describe('keylime driver: a liveness enrolment of an agent the registrar now holds with a TPM', function () {
  this.timeout(30_000);
  const { fake, info } = useFakeKeylime('ironlime-liveness-tpm-mode-', ALLOWLIST, AGENT);

  for (const mode of ['tpm', 'emulated-tpm'] as const) {
    it(`refuses an identity in mode ${mode}, and enrols nothing`, async function () {
      fake.routes.set(`GET /registrar/v2.1/agents/${AGENT}`, () => [
        200,
        { agent_id: AGENT, ek_tpm: null, ekcert: null, aik_tpm: null, mtls_cert: CERT, ip: '127.0.0.1', port: 9002, regcount: 1, identity_mode: 'id-only', trust_level: 'id-only' },
      ]);
      fake.routes.set(`GET /registrar/v2.1/agents/${AGENT}/identity`, () => [
        200,
        { agent_id: AGENT, identity_mode: mode, trust_level: mode === 'tpm' ? 'hardware-tpm' : 'emulated-tpm', host_id_hash: null, host_proof_key: null, mode_change_to: null, flagged_reason: null, mtls_cert: CERT, ip: '127.0.0.1', port: 9002 },
      ]);
      fake.routes.set(`POST /v2.3/liveness/${AGENT}`, () => [200, {}]);
      const refused = await rejection(new KeylimeAttestation({ ekCheck: 'off' }).startAttestation(createTask(keylimeTestNode(info), CONFIG)));
      expect(refused, refused.message).to.be.instanceOf(AttestationFailed);
      expect((refused as AttestationFailed).reasons.join()).to.include(`registered in mode ${mode}`);
      expect(fake.requests).to.not.include(`POST /v2.3/liveness/${AGENT}`);
    });
  }
});
