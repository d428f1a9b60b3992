import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { DeliveryRefused, finalRefusalStatus } from '../../lib/revocation/revocation-post.js';
import { signRevocation, type RevocationMessage } from '../../lib/revocation/revocation-message.js';
import { numberArrayBody, timedHttpsCall } from '../helpers/timed-https-call.js';
import { startTestBroker, type TestBroker } from './helpers/broker-fixture.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

/**
 * `POST /kbs/v0/revocation` is public: its body is bounded by what a signed envelope can be (2 MiB),
 * not the broker's 64 MiB, and a broker without a revocation certificate refuses before reading it (H2 M2).
 */
describe('broker: the public revocation route reads a small body, and none without a revocation certificate', function () {
  this.timeout(120_000);
  let dir: string;
  let withKey: TestBroker;
  let withoutKey: TestBroker;
  const keys = newRsaKeyPairSync();

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-revocation-body-'));
    await writeFile(path.join(dir, 'revocation.pem'), keys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    withKey = await startTestBroker({ revocationCert: path.join(dir, 'revocation.pem') });
    withoutKey = await startTestBroker();
  });

  after(async () => {
    await withKey?.dispose();
    await withoutKey?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const revoke = (broker: TestBroker, body: string) =>
    timedHttpsCall(broker.running.url, broker.running.caCert, 'POST', '/kbs/v0/revocation', { 'content-type': 'application/json' }, body);

  it('refuses 413 a body over 2 MiB', async () => {
    const reply = await revoke(withKey, JSON.stringify({ msg: 'a'.repeat(3 * 1024 * 1024), signature: 'b' }));
    expect(reply.status).to.equal(413);
  });

  it('without a revocation certificate, refuses before reading the body (a 2 MiB array: a 401, not the 400 of its body)', async () => {
    const reply = await revoke(withoutKey, numberArrayBody(2 * 1024 * 1024 - 16));
    expect(reply.status).to.equal(401);
    const problem = JSON.parse(reply.body) as { type: string; detail: string };
    expect(problem.type).to.match(/AdminAuth$/);
    expect(problem.detail).to.contain('no revocation certificate configured');
  });

  it('refuses for good (a 4xx the verifier\'s outbox does not retry) a signed message that can never be stored', async () => {
    const privatePem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const message = (agentId: string, eventId: string): RevocationMessage => ({
      type: 'revocation',
      ip: null,
      agent_id: agentId,
      port: null,
      tpm_policy: '{}',
      meta_data: '{}',
      event_time: 'Sun Dec  6 16:00:00 2026',
      event_id: eventId,
      severity_label: 'emergency',
      context: '{}',
    });
    for (const agentId of ['a'.repeat(81), 'node\u0000one']) {
      const reply = await revoke(withKey, JSON.stringify(signRevocation(message(agentId, 'ima.file_hash_mismatch'), privatePem)));
      expect(finalRefusalStatus(new DeliveryRefused('refused', reply.status)), `${reply.status} ${reply.body}`).to.equal(401);
      expect((JSON.parse(reply.body) as { type: string }).type).to.match(/SerdeError$/);
    }
    const longest = await revoke(withKey, JSON.stringify(signRevocation(message('a'.repeat(80), 'ima.file_hash_mismatch'), privatePem)));
    expect(longest.status, 'the longest agent id is stored').to.equal(204);
    // A NUL in event_id (the revocation's reason) never keeps a node trusted: the node is revoked.
    const nul = await revoke(withKey, JSON.stringify(signRevocation(message('node-nul-event', 'ima\u0000'), privatePem)));
    expect(nul.status, nul.body).to.equal(204);
    expect(await withKey.admin.revocationInForce('node-nul-event')).to.be.a('string');
  });

  it('applies an administrator\'s revocation whose reason holds a NUL (PostgreSQL text refuses it)', async () => {
    await withKey.admin.revoke('node-nul-reason', 'disk\u0000swapped');
    expect(await withKey.admin.revocationInForce('node-nul-reason')).to.be.a('string');
  });
});
