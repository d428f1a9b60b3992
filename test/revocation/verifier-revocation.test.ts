import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { checkRevocationEnvelope, revocationVerifyKey } from '../../lib/revocation/revocation-signature.js';
import type { RevocationEnvelope } from '../../lib/revocation/revocation-message.js';
import { createDeployment, digestOf, eventually, policyForAgent, type Deployment } from '../verifier/helpers/verifier-fixture.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

describe('verifier revocation: a failed agent is announced, signed, to webhooks and to the other agents', function () {
  this.timeout(90_000);
  const revocation = newRsaKeyPairSync();
  const privatePem = revocation.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicPem = revocation.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  let deployment: Deployment;
  let webhook: Server;
  let dir: string;
  const received: RevocationEnvelope[] = [];

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-revocation-'));
    webhook = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        received.push(JSON.parse(body) as RevocationEnvelope);
        response.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    deployment = await createDeployment();
    await deployment.startVerifier({ revocationWebhooks: [`http://127.0.0.1:${(webhook.address() as AddressInfo).port}/revoked`] });
  });

  after(async function () {
    await deployment?.dispose();
    await new Promise((resolve) => webhook?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('the tampered agent is announced once its failure is stored; the other agent checks the signature and runs its action', async function () {
    const certFile = path.join(dir, 'revocation.pem');
    writeFileSync(certFile, publicPem);
    const marker = path.join(dir, 'action-ran.json');
    const action = path.join(dir, 'action.sh');
    // Written whole, then renamed: the marker appears only once its JSON is complete.
    writeFileSync(action, `#!/bin/sh\ncat > '${marker}.part' && mv '${marker}.part' '${marker}'\n`);
    chmodSync(action, 0o755);
    const tenant = deployment.tenant();
    const bad = await deployment.startAgent('bad');
    const witness = await deployment.startAgent('witness', { revocationCertFile: certFile, revocationActions: [action] });
    const good = digestOf('good');
    for (const agent of [bad, witness]) {
      await tenant.addAgent(agent.uuid, { runtimePolicy: policyForAgent(agent, { '/usr/bin/good': good }), revocationKey: privatePem });
      await tenant.waitForState(agent.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 15_000 });
    }
    expect(received, 'nothing is announced while every agent passes').to.deep.equal([]);

    await bad.appendIma('/usr/bin/evil', digestOf('evil'));
    await tenant.waitForState(bad.uuid, [OperationalState.INVALID_QUOTE], { timeoutMs: 15_000 });
    await eventually('the webhook to be called', async () => received.length > 0);
    const envelope = received[0] as RevocationEnvelope;
    expect(checkRevocationEnvelope(envelope, revocationVerifyKey(publicPem)).ok).to.equal(true);
    const message = JSON.parse(envelope.msg) as Record<string, unknown>;
    expect(message).to.include({ type: 'revocation', agent_id: bad.uuid, event_id: 'ima.validation.ima-ng.not_in_allowlist' });

    await eventually('the witness agent to run its action', async () => existsSync(marker));
    expect(JSON.parse(readFileSync(marker, 'utf8'))).to.include({ agent_id: bad.uuid, type: 'revocation' });
    expect(received, 'announced once, not every round').to.have.length(1);
  });
});
