import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { RevocationEnvelope } from '../../lib/revocation/revocation-message.js';
import { VerifierMetrics } from '../../lib/verifier/verifier-metrics.js';
import type { RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { createDeployment, digestOf, eventually, policyForAgent, type Deployment } from '../verifier/helpers/verifier-fixture.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

/** The verifier's `ironlime_verifier_undelivered_revocations` as its /metrics shows it. */
async function undeliveredGauge(verifier: RunningVerifier): Promise<number> {
  const metric = await verifier.container.resolve(VerifierMetrics).registry.getSingleMetric('ironlime_verifier_undelivered_revocations')?.get();
  return metric?.values[0]?.value ?? -1;
}

describe('verifier revocation: a notice its webhook did not take survives the verifier restarting', function () {
  this.timeout(90_000);
  const revocationKey = newRsaKeyPairSync().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  let deployment: Deployment;
  let webhook: Server;
  let status = 500;
  const received: { status: number; envelope: RevocationEnvelope }[] = [];

  before(async function () {
    webhook = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        received.push({ status, envelope: JSON.parse(body) as RevocationEnvelope });
        response.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    deployment = await createDeployment();
  });

  after(async function () {
    await deployment?.dispose();
    await new Promise((resolve) => webhook?.close(resolve));
  });

  it('the failure is kept while the webhook answers 500, counted in /metrics, and delivered by the restarted verifier', async function () {
    const config = { revocationWebhooks: [`http://127.0.0.1:${(webhook.address() as AddressInfo).port}/revoked`] };
    const first = await deployment.startVerifier(config);
    const tenant = deployment.tenant();
    const bad = await deployment.startAgent('bad');
    await tenant.addAgent(bad.uuid, { runtimePolicy: policyForAgent(bad), revocationKey });
    await tenant.waitForState(bad.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 15_000 });
    expect(await undeliveredGauge(first)).to.equal(0);

    await bad.appendIma('/usr/bin/evil', digestOf('evil'));
    await tenant.waitForState(bad.uuid, [OperationalState.INVALID_QUOTE], { timeoutMs: 15_000 });
    await eventually('the webhook to refuse the notice', async () => received.length > 0);
    expect(await undeliveredGauge(first)).to.equal(1);
    await first.close();

    status = 200;
    const second = await deployment.startVerifier(config);
    await eventually('the restarted verifier to deliver the notice', async () => received.some((each) => each.status === 200), 20_000);
    // The webhook records the request before its answer reaches the verifier, which then deletes the row and lowers the gauge.
    await eventually('the delivered notice to leave the gauge', async () => (await undeliveredGauge(second)) === 0);
    const messages = new Set(received.map((each) => each.envelope.msg));
    expect(messages.size, 'the same notice, not a new one').to.equal(1);
    expect(JSON.parse([...messages][0] as string)).to.include({ type: 'revocation', agent_id: bad.uuid });
  });
});
