import { expect } from 'chai';
import { AttestationFailed, AttestationServiceUnavailable } from '../../interfaces/errors.js';
import type { Task } from '../../interfaces/task.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { keylimeTestNode as node, rejection } from './driver-test-node.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00001';
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 1, statusPollIntervalSeconds: 1 } });
const NODE_A = node({}).uuid;
const NODE_B = '0b7c2f4e-51a3-4c8e-9d0a-2f6b8e1c3d40';

describe('keylime driver: a verifier status is trusted only for the node that enrolled the agent, and only when well typed', function () {
  const fixture = useFakeKeylime('ironlime-binding-', ALLOWLIST, AGENT);
  const { fake, info } = fixture;

  const taskOf = (uuid: string): Task => createTask({ ...node(info), uuid }, CONFIG);

  /** The verifier holds the agent, passing, as enrolled for `owner` (metadata as the driver writes it). */
  function passingFor(metadata: Record<string, unknown>, extra: Record<string, unknown> = {}): void {
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [
      200,
      { operational_state: 3, attestation_count: 5, last_successful_attestation: Math.floor(Date.now() / 1000), meta_data: JSON.stringify(metadata), ...extra },
    ]);
    fake.routes.set(`DELETE /v2.1/agents/${AGENT}`, () => [200, {}]);
  }

  it("does not give one node another node's PASS on a shared agent id", async function () {
    passingFor({ ironlime_policy_fingerprint: 'x', node: NODE_A });
    await new KeylimeAttestation().validateSecurityStatus(taskOf(NODE_A));
    const error = await rejection(new KeylimeAttestation().validateSecurityStatus(taskOf(NODE_B)));
    expect(error).to.be.instanceOf(AttestationFailed);
    expect((error as AttestationFailed).reasons[0]).to.equal(`agent ${AGENT} is enrolled with the verifier for node ${NODE_A}, not for node ${NODE_B}: refused`);
  });

  it('does not judge an enrolment this driver did not make for the node', async function () {
    passingFor({});
    const error = await rejection(new KeylimeAttestation().validateSecurityStatus(taskOf(NODE_A)));
    expect(error).to.be.instanceOf(AttestationFailed);
    expect(error.message).to.contain('not by this driver for a node');
  });

  it("neither replaces nor removes another node's enrolment", async function () {
    passingFor({ ironlime_policy_fingerprint: 'x', node: NODE_A });
    const start = await rejection(new KeylimeAttestation().startAttestation(taskOf(NODE_B)));
    expect(start).to.be.instanceOf(AttestationFailed);
    await new KeylimeAttestation().unregisterNode(taskOf(NODE_B));
    expect(fake.requests.filter((request) => !request.startsWith('GET '))).to.deep.equal([]);
    await new KeylimeAttestation().unregisterNode(taskOf(NODE_A));
    expect(fake.requests.at(-1)).to.equal(`DELETE /v2.1/agents/${AGENT}`);
  });

  for (const [field, value, expected] of [
    ['trusted', 'false', 'results.trusted: must be a boolean, got "false"'],
    ['attestation_status', 0, 'results.attestation_status: must be a string, got 0'],
    ['operational_state', '3', 'results.operational_state: must be a state code, got "3"'],
    ['last_successful_attestation', '1700000000', 'results.last_successful_attestation: must be unix seconds, got "1700000000"'],
  ] as const) {
    it(`refuses a status whose ${field} has the wrong type instead of reading it as absent`, async function () {
      passingFor({ node: NODE_A }, { [field]: value });
      const error = await rejection(new KeylimeAttestation().validateSecurityStatus(taskOf(NODE_A)));
      // The service's fault, not the node's: unavailable (retried by the orchestrator), never trusted.
      expect(error).to.be.instanceOf(AttestationServiceUnavailable);
      expect(error.message).to.equal(`attestation service unavailable: agent ${AGENT}: verifier status of agent ${AGENT}: bad reply: wrongly typed fields (${expected}): not trusted`);
    });
  }
});
