import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { numberArrayBody, timedHttpsCall } from '../helpers/timed-https-call.js';
import { startTestBroker, type TestBroker } from './helpers/broker-fixture.js';

/**
 * `POST /kbs/v0/revocation` is public: its body is bounded by what a signed envelope can be (2 MiB),
 * not the broker's 64 MiB, and a broker without a revocation certificate refuses before reading it (H2 M2).
 */
describe('broker: the public revocation route reads a small body, and none without a revocation certificate', function () {
  this.timeout(120_000);
  let dir: string;
  let withKey: TestBroker;
  let withoutKey: TestBroker;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-revocation-body-'));
    const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
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
});
