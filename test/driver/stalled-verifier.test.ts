import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { expect } from 'chai';
import { AttestationServiceUnavailable } from '../../interfaces/errors.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { keylimeTestNode as node, rejection } from './driver-test-node.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00021';
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 1, statusPollIntervalSeconds: 1 } });

/** A verifier that accepts the connection and never answers must not hold the step past `statusTimeoutSeconds`. */
describe('keylime driver: a verifier that accepts and never answers', function () {
  const { info } = useFakeKeylime('ironlime-stalled-verifier-', ALLOWLIST, AGENT);
  const sockets: Socket[] = [];
  let stalled: Server;
  let stalledUrl = '';

  before(async function () {
    stalled = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    stalledUrl = `http://127.0.0.1:${(stalled.address() as AddressInfo).port}`;
  });

  after(async function () {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => stalled.close(resolve));
  });

  it('validateSecurityStatus gives up at statusTimeoutSeconds, not at the (longer) request timeout', async function () {
    const started = Date.now();
    const driver = new KeylimeAttestation({ requestTimeoutMs: 30_000 });
    const error = await rejection(driver.validateSecurityStatus(createTask(node({ ...info, keylime_verifier_url: stalledUrl }), CONFIG)));
    expect(error).to.be.instanceOf(AttestationServiceUnavailable);
    expect(error.message).to.contain('no verdict from the verifier within 1 s');
    // 1 s status timeout (+1 s for a last read) against a 30 s request timeout; generous for a loaded machine.
    expect(Date.now() - started).to.be.lessThan(15_000);
  });
});
