import { expect } from 'chai';
import { AttestationServiceUnavailable } from '../../interfaces/errors.js';
import type { Task } from '../../interfaces/task.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { keylimeTestNode as node, rejection } from './driver-test-node.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00022';
const NODE = node({}).uuid;
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 3, statusPollIntervalSeconds: 1 } });

/**
 * A deploy step waits for the node's verdict (`validateSecurityStatus`); the verifier answers "pending"
 * once, then fails: a 500 whose body still carries a fresh PASS (a proxy or a failing verifier replaying
 * a cached body), or an HTML error page served as 200. The step fails closed with
 * AttestationServiceUnavailable naming the last answer, never trusted.
 */
describe('keylime driver: the verifier failing while a deploy waits for its verdict', function () {
  const fixture = useFakeKeylime('ironlime-mid-deploy-', ALLOWLIST, AGENT);
  const { fake, info } = fixture;
  const now = (): number => Math.floor(Date.now() / 1000);
  const task = (): Task => createTask(node({ ...info }), CONFIG);
  const pending = { operational_state: 1, attestation_count: 0, last_successful_attestation: 0, meta_data: JSON.stringify({ node: NODE }) };
  const passed = () => ({ operational_state: 3, attestation_status: 'PASS', attestation_count: 2, last_successful_attestation: now(), meta_data: JSON.stringify({ node: NODE }) });

  const cases: [string, () => [number, unknown] | string, RegExp][] = [
    ['500 whose results read as a PASS', () => [500, passed()], /no verdict from the verifier within 3 s \(last: .*: 500 x\)$/],
    ['an HTML error page served as 200', () => '<html><body>502 Bad Gateway</body></html>', /bad reply: not a Keylime JSON envelope/],
  ];
  for (const [name, answer, says] of cases) {
    it(`pending, then ${name}: not trusted`, async function () {
      let reads = 0;
      fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => {
        reads += 1;
        return reads < 2 ? [200, pending] : answer();
      });
      const error = await rejection(new KeylimeAttestation().validateSecurityStatus(task()));
      expect(error).to.be.instanceOf(AttestationServiceUnavailable);
      expect(error.message).to.match(says);
    });
  }
});
