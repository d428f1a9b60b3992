import { request } from 'node:https';
import { expect } from 'chai';
import { loadOrCreateBrokerKeys } from '../../lib/broker/broker-keys.js';
import { EarTokenIssuer } from '../../lib/broker/ear-token.js';
import { TeeKeyPair } from '../../lib/kbs-client/tee-key-pair.js';
import { startTestBroker, type TestBroker } from './helpers/broker-fixture.js';

const ISSUER = 'standing-unreachable';
const AGENT = '4b1e7d2c-8a3f-4e6b-9c0d-1f2a3b4c5d6e';
const RESOURCE = '/kbs/v0/resource/node/disk-key/unreachable';

/**
 * A `verifier_standing` resource while the verifier cannot be asked: nothing is released (fail closed),
 * and the refusal says the outage is passing — 503 with `Retry-After` — rather than a 403 `PolicyDeny`
 * a KBS client takes for the policy's final word.
 */
describe('broker: the good-standing check when the verifier cannot be reached', function () {
  this.timeout(60_000);
  let broker: TestBroker;
  let issuer: EarTokenIssuer;

  before(async function () {
    broker = await startTestBroker({ issuer: ISSUER, verifierUrl: 'https://127.0.0.1:1' });
    const keys = await loadOrCreateBrokerKeys(broker.dataDir, ISSUER);
    issuer = new EarTokenIssuer({ issuer: ISSUER, lifetimeSeconds: 300, privateKey: keys.tokenPrivateKey, publicKey: keys.tokenPublicKey });
    await broker.admin.putNode(AGENT, {});
    await broker.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'unreachable' }, new Uint8Array([1, 2, 3]), { agents: [AGENT], verifier_standing: true });
  });

  after(async function () {
    await broker?.dispose();
  });

  /** The reply to a resource request with a token of the broker's own issuer: status, Retry-After and body. */
  async function fetchWithToken(akTpm: string | null): Promise<{ status: number; retryAfter: string | undefined; body: { type?: string; detail?: string } }> {
    const key = await TeeKeyPair.generate('ec');
    const token = await issuer.issue({
      agentId: AGENT,
      akTpm,
      teePubkey: key.publicJwk,
      vector: { 'instance-identity': 2, configuration: 0, executables: 0, hardware: 2 },
      pcrs: {},
      reportData: '',
      now: Math.floor(Date.now() / 1000),
    });
    const url = new URL(RESOURCE, broker.running.url);
    return new Promise((resolve, reject) => {
      const sent = request(url, { method: 'GET', ca: broker.running.caCert, headers: { authorization: `Bearer ${token}` } }, (reply) => {
        const chunks: Buffer[] = [];
        reply.on('data', (chunk: Buffer) => chunks.push(chunk));
        reply.on('end', () => {
          const retryAfter = reply.headers['retry-after'];
          resolve({ status: reply.statusCode ?? 0, retryAfter, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type?: string; detail?: string } });
        });
        reply.on('error', reject);
      });
      sent.on('error', reject);
      sent.end();
    });
  }

  it('is 503 with Retry-After, no resource released', async function () {
    const reply = await fetchWithToken('AAAA');
    expect(reply.status).to.equal(503);
    expect(Number(reply.retryAfter)).to.be.greaterThan(0);
    expect(reply.body.type).to.equal('https://github.com/confidential-containers/kbs/errors/VerifierUnavailable');
    expect(reply.body.detail).to.contain('could not be asked');
  });

  it('a node without an AK at the broker stays 403 PolicyDeny (no retry mends it)', async function () {
    const reply = await fetchWithToken(null);
    expect([reply.status, reply.retryAfter, reply.body.type]).to.deep.equal([403, undefined, 'https://github.com/confidential-containers/kbs/errors/PolicyDeny']);
  });
});
