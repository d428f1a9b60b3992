import { expect } from 'chai';
import { nodeDigest } from '../../lib/broker/broker-node.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { TeeKeyPair } from '../../lib/kbs-client/tee-key-pair.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { brokerReportData, refusal, startTestBroker, type TestBroker } from './helpers/broker-fixture.js';

const AGENT = '0b7c3e52-9d14-4f6a-b2c8-5e1a7d903f46';

/**
 * A node stored before the broker refused weak AKs at its PUT (or written by another tool) holds a
 * 1024-bit RSA AK: anyone who factors it signs quotes as the node's TPM. Loaded for an attestation, it
 * must be refused naming the AK, as the verifier fails such a stored enrolment — not trusted by that
 * key, and not a 500 or a worker lost.
 */
describe('broker: a node stored with a weak AK', function () {
  this.timeout(60_000);
  let db: OpenedDatabase;
  let broker: TestBroker;
  let http: KbsHttp;
  const weak = new FakeAgent({ akRsaBits: 1024 });

  before(async function () {
    db = await openTestSchema();
    broker = await startTestBroker({}, db.database);
    http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    await broker.admin.putNode(AGENT, { akTpm: new FakeAgent().akTpm, groups: ['rack4'] });
    const row = (await db.database.knex('broker_nodes').where({ agent_id: AGENT }).first()) as { tpm_policy: string; runtime_policy: string | null; mb_refstate: string | null };
    const record = { agentId: AGENT, akTpm: weak.akTpm, tpmPolicy: row.tpm_policy, runtimePolicy: row.runtime_policy, mbRefstate: row.mb_refstate, groups: ['rack4'] };
    await db.database.knex('broker_nodes').where({ agent_id: AGENT }).update({ ak_tpm: weak.akTpm, digest: nodeDigest(record) });
  });

  after(async function () {
    await http?.close();
    await broker?.dispose();
    await db?.dispose();
  });

  /** `/auth` then `/attest` with a valid quote signed by the weak AK over the session's report data. */
  async function attestWithWeakAk(): Promise<unknown> {
    const auth = await http.send('POST', '/kbs/v0/auth', { body: { version: '0.4.0', tee: 'tpm' } });
    const cookie = String(auth.headers['set-cookie']).split(';')[0] as string;
    const runtimeData = { nonce: (auth.body as { nonce: string }).nonce, 'tee-pubkey': (await TeeKeyPair.generate('ec')).publicJwk };
    const quote = weak.quote(brokerReportData(runtimeData), new Map([[16, new Uint8Array(32)]]));
    const evidence = { agent_id: AGENT, quote, hash_alg: 'sha256' };
    return http.send('POST', '/kbs/v0/attest', { body: { 'runtime-data': runtimeData, 'tee-evidence': { primary_evidence: evidence } }, headers: { cookie } });
  }

  it('refuses its attestation (AttestationError naming the AK), every time, and the broker goes on serving', async function () {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const refused = await refusal(attestWithWeakAk());
      expect(refused.remoteHttpStatus, refused.message).to.equal(401);
      expect(refused.kbsType).to.equal('AttestationError');
      expect(refused.detail).to.match(/the AK is a 1024-bit RSA key/);
    }
    expect((await http.send('POST', '/kbs/v0/auth', { body: { version: '0.4.0', tee: 'tpm' } })).status).to.equal(200);
  });
});
