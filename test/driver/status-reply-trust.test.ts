import { expect } from 'chai';
import { AttestationServiceUnavailable } from '../../interfaces/errors.js';
import type { Task } from '../../interfaces/task.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { buildEnrolmentPolicy } from '../../drivers/keylime/enrolment-policy.js';
import { parseKeylimeDriverInfo } from '../../drivers/keylime/keylime-driver-info.js';
import { keylimeTestNode as node, rejection } from './driver-test-node.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00011';
// The replies not trusted are pending until the status deadline, which these tests wait for: 1 s, as
// nothing must happen within it (a stall that leaves no read answered ends the same way). The healthy
// reply waits for its verdict, given 10 s (`VERDICT_CONFIG`): a 1 s deadline gave up on it when the host stalled.
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 1, statusPollIntervalSeconds: 1 } });
const VERDICT_CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 10, statusPollIntervalSeconds: 1 } });
const YEAR = 365 * 86_400;

/**
 * `validateSecurityStatus` against replies a verifier could send that must not read as trusted: an
 * `attestation_status` the driver does not know, a bound too long to mean anything, a push node whose
 * reply carries no verdict, a verifier clock ahead of ours. Each ends "service unavailable" at the
 * deadline, never trusted. And a node switched to push is enrolled again.
 */
describe('keylime driver: replies that must not be trusted', function () {
  const { fake, info } = useFakeKeylime('ironlime-reply-trust-', ALLOWLIST, AGENT);
  const task = (config = CONFIG): Task => createTask(node(info), config);
  const now = (): number => Math.floor(Date.now() / 1000);
  const nodeUuid = node({}).uuid;

  function reply(fields: Record<string, unknown>, headers: Record<string, string> = {}): void {
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [200, { attestation_count: 5, meta_data: JSON.stringify({ node: nodeUuid }), ...fields }, headers]);
  }

  async function notTrusted(): Promise<void> {
    const error = await rejection(new KeylimeAttestation().validateSecurityStatus(task()));
    expect(error).to.be.instanceOf(AttestationServiceUnavailable);
  }

  it('a healthy reply is trusted (the cases below differ from it in one field)', async function () {
    reply({ operational_state: 3, attestation_status: 'PASS', last_successful_attestation: now() });
    await new KeylimeAttestation().validateSecurityStatus(task(VERDICT_CONFIG));
  });

  for (const status of ['fail', 'FAILED', 'ERROR', 'PENDING', '']) {
    it(`state 3 with attestation_status ${JSON.stringify(status)} is not trusted`, async function () {
      reply({ operational_state: 3, attestation_status: status, last_successful_attestation: now() });
      await notTrusted();
    });
  }

  it('a PASS a year old is not trusted, whatever bound the reply names', async function () {
    for (const fields of [{ freshness_bound: 1e12 }, { attestation_period: '999999999s' }, { attestation_period: 1e300 }]) {
      reply({ operational_state: 3, attestation_status: 'PASS', last_successful_attestation: now() - YEAR, ...fields });
      await notTrusted();
    }
  });

  it('a push node whose reply carries no verdict (Keylime keeps push agents in state 3) is not trusted', async function () {
    info['keylime_agent_mode'] = 'push';
    reply({ operational_state: 3, last_successful_attestation: now() - 2 });
    await notTrusted();
  });

  it('a PASS 630 s old is not trusted from a verifier whose clock runs 600 s ahead (its Date header)', async function () {
    const verifierNow = now() + 600;
    reply({ operational_state: 3, attestation_status: 'PASS', last_successful_attestation: verifierNow - 630 }, { date: new Date(verifierNow * 1000).toUTCString() });
    await notTrusted();
  });

  it('a healthy reply from a verifier whose clock is 60 s or 10 min off ours (its Date header) is trusted', async function () {
    for (const skew of [60, 600, -60, -600]) {
      // The verifier dates the success and its Date on its own clock, a second apart.
      const verifierNow = now() + skew;
      reply({ operational_state: 3, attestation_status: 'PASS', last_successful_attestation: verifierNow - 1 }, { date: new Date(verifierNow * 1000).toUTCString() });
      await new KeylimeAttestation().validateSecurityStatus(task(VERDICT_CONFIG));
    }
  });

  it('a PASS 100 s old by the verifier\'s clock is not trusted, its clock 10 min ahead of ours or behind', async function () {
    for (const skew of [600, -600]) {
      const verifierNow = now() + skew;
      reply({ operational_state: 3, attestation_status: 'PASS', last_successful_attestation: verifierNow - 100 }, { date: new Date(verifierNow * 1000).toUTCString() });
      await notTrusted();
    }
  });

  it('a PASS served from an HTTP cache 300 s after the verifier answered (its Date, with the Age the cache adds) is not trusted', async function () {
    const answered = now() - 300;
    const cached = { date: new Date(answered * 1000).toUTCString() };
    reply({ operational_state: 3, attestation_status: 'PASS', last_successful_attestation: answered - 1 }, { ...cached, age: '300' });
    await notTrusted();
    // An Age that is not whole seconds gives no verifier clock: the reply is judged on ours.
    reply({ operational_state: 3, attestation_status: 'PASS', last_successful_attestation: answered - 1 }, { ...cached, age: '-300' });
    await notTrusted();
    // A fresh reply with Age 0 is trusted.
    reply({ operational_state: 3, attestation_status: 'PASS', last_successful_attestation: now() - 1 }, { date: new Date(now() * 1000).toUTCString(), age: '0' });
    await new KeylimeAttestation().validateSecurityStatus(task(VERDICT_CONFIG));
  });

  it('a node switched from pull to push gets another policy fingerprint, so it is enrolled again', async function () {
    const documents = { policy: Buffer.from(ALLOWLIST), excludelist: undefined, mbRefstate: undefined };
    const fingerprint = (mode: 'pull' | 'push'): string =>
      buildEnrolmentPolicy(parseKeylimeDriverInfo({ ...info, keylime_agent_mode: mode }, CONFIG.keylime, { locatorAvailable: false }), documents, { ekCheck: 'require', extraEkCaDirs: [] }).fingerprint;
    expect(fingerprint('push')).to.not.equal(fingerprint('pull'));
    // A pull enrolment made before the mode counted keeps its fingerprint: no re-enrolment on upgrade.
    const withoutMode = buildEnrolmentPolicy(parseKeylimeDriverInfo({ ...info }, CONFIG.keylime, { locatorAvailable: false }), documents, { ekCheck: 'require', extraEkCaDirs: [] }).fingerprint;
    expect(fingerprint('pull')).to.equal(withoutMode);
  });
});
