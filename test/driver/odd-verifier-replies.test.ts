import { expect } from 'chai';
import { AttestationServiceUnavailable } from '../../interfaces/errors.js';
import type { DriverInfo } from '../../interfaces/node.js';
import type { Task } from '../../interfaces/task.js';
import { judgeVerifierStatus } from '../../lib/attestation/operator-decision.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { keylimeTestNode as node, rejection } from './driver-test-node.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00021';
const NODE = node({}).uuid;
// A status deadline of 10 s for the replies judged at the first read: a 1 s one gave up on that read when
// the host stalled during it. The push-state tests wait for the deadline, saying what the last read
// answered: 3 s (`DEADLINE_CONFIG`), so that a read still answers within it on a host that stalls for a second or two.
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 10, statusPollIntervalSeconds: 1 } });
const DEADLINE_CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 3, statusPollIntervalSeconds: 1 } });

/** Verifier replies the driver must not read as a PASS: typed wrongly, about another agent, or in a state a push agent is never in. */
describe('keylime driver: odd verifier status replies', function () {
  const fixture = useFakeKeylime('ironlime-odd-replies-', ALLOWLIST, AGENT);
  const { fake, info } = fixture;
  const now = (): number => Math.floor(Date.now() / 1000);
  const task = (extra: DriverInfo = {}, config = CONFIG): Task => createTask(node({ ...info, ...extra }), config);

  function replying(results: Record<string, unknown>): void {
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [200, { meta_data: JSON.stringify({ node: NODE }), ...results }]);
    fake.routes.set(`DELETE /v2.1/agents/${AGENT}`, () => [200, {}]);
  }

  it('unregisterNode reports a wrongly typed status as AttestationServiceUnavailable (the service is at fault), sending no DELETE', async function () {
    replying({ operational_state: '3' });
    const error = await rejection(new KeylimeAttestation().unregisterNode(task()));
    expect(error).to.be.instanceOf(AttestationServiceUnavailable);
    expect(error.message).to.contain('wrongly typed fields');
    expect(fake.requests).to.not.include(`DELETE /v2.1/agents/${AGENT}`);
  });

  it('validateSecurityStatus reports a wrongly typed status as AttestationServiceUnavailable, never trusted', async function () {
    replying({ operational_state: 3, attestation_status: 'PASS', attestation_count: 2, last_successful_attestation: now(), trusted: 'true' });
    const error = await rejection(new KeylimeAttestation().validateSecurityStatus(task()));
    expect(error).to.be.instanceOf(AttestationServiceUnavailable);
    expect(error.message).to.contain('wrongly typed fields');
  });

  it('does not trust a PASS whose reply names another agent_id: AttestationServiceUnavailable', async function () {
    replying({ agent_id: 'someone-else', operational_state: 3, attestation_status: 'PASS', attestation_count: 2, last_successful_attestation: now() });
    const error = await rejection(new KeylimeAttestation().validateSecurityStatus(task()));
    expect(error).to.be.instanceOf(AttestationServiceUnavailable);
    expect(error.message).to.contain('it names agent "someone-else": not trusted');
    replying({ agent_id: AGENT, operational_state: 3, attestation_status: 'PASS', attestation_count: 2, last_successful_attestation: now() });
    await new KeylimeAttestation().validateSecurityStatus(task());
  });

  for (const state of [4, 42]) {
    it(`does not trust a fresh PASS of a push node in state ${state}`, async function () {
      replying({ operational_state: state, attestation_status: 'PASS', attestation_count: 2, last_successful_attestation: now() });
      const error = await rejection(new KeylimeAttestation().validateSecurityStatus(task({ keylime_agent_mode: 'push' }, DEADLINE_CONFIG)));
      expect(error).to.be.instanceOf(AttestationServiceUnavailable);
      expect(error.message).to.contain('not one a push agent attests in');
    });
  }

  it('judges a push agent pending outside START and GET_QUOTE, whatever its status says', function () {
    const rule = { now: now(), agentMode: 'push' as const };
    const view = {
      operationalState: 3,
      attestationCount: 2,
      attestationStatus: 'PASS',
      lastEventId: null,
      severityLevel: null,
      failureEventIds: [],
      failureReasons: [],
      lastSuccessfulAttestation: now(),
      attestationPeriodSeconds: undefined,
      trusted: undefined,
      freshnessBoundSeconds: undefined,
      metaData: '',
    };
    expect(judgeVerifierStatus(view, rule).kind).to.equal('pass');
    expect(judgeVerifierStatus({ ...view, operationalState: 1 }, rule).kind).to.equal('pass');
    expect(judgeVerifierStatus({ ...view, operationalState: null }, rule).kind).to.equal('pass');
    for (const state of [0, 2, 4, 5, 6, 11, 42]) {
      expect(judgeVerifierStatus({ ...view, operationalState: state }, rule).kind, `state ${state}`).to.equal('pending');
    }
  });
});
