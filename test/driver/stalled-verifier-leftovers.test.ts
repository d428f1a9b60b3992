import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { expect } from 'chai';
import { AttestationServiceUnavailable } from '../../interfaces/errors.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { keylimeTestNode as node, rejection } from './driver-test-node.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00022';
const OURS = JSON.stringify({ node: '5a0e1d9c-0d7e-4a57-8f49-6c7a4e1f2b10' });
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 2, statusPollIntervalSeconds: 1 } });

/**
 * A verifier that answers, then stalls on the kept-alive connection: the read the wait stops waiting for
 * at the deadline must end with the driver's connection, not be sent again on a new one that lives until
 * the request timeout (a socket and a timer per stalled node, after the step was already answered).
 */
describe('keylime driver: a verifier that stalls after answering on a kept-alive connection', function () {
  const { fake, info } = useFakeKeylime('ironlime-stall-leak-', ALLOWLIST, AGENT);
  const sockets: Socket[] = [];
  const connectedAt: number[] = [];
  let agentReads = 0;
  let proxy: Server;
  let proxyUrl = '';

  before(async function () {
    proxy = createServer((req, res) => {
      // The first read of the agent is answered (pending); the next ones, on the same kept-alive connection, never are.
      if (req.url?.includes('/agents/') === true && ++agentReads > 1) return;
      const upstream = new URL(fake.url);
      const forward = httpRequest({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (reply) => {
        res.writeHead(reply.statusCode ?? 500, reply.headers);
        reply.pipe(res);
      });
      req.pipe(forward);
    });
    proxy.on('connection', (socket) => {
      sockets.push(socket);
      connectedAt.push(Date.now());
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });

  after(async function () {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => proxy.close(resolve));
  });

  it('leaves no request to the verifier running once validateSecurityStatus has given up', async function () {
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [200, { operational_state: 1, attestation_count: 0, meta_data: OURS }]);
    const error = await rejection(new KeylimeAttestation({ requestTimeoutMs: 30_000 }).validateSecurityStatus(createTask(node({ ...info, keylime_verifier_url: proxyUrl }), CONFIG)));
    const gaveUp = Date.now();
    expect(error).to.be.instanceOf(AttestationServiceUnavailable);
    // Long enough for a request sent again to connect; short against the 30 s request timeout.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(connectedAt.filter((at) => at >= gaveUp)).to.deep.equal([]);
    expect(sockets.filter((socket) => !socket.destroyed)).to.have.length(0);
  });
});
