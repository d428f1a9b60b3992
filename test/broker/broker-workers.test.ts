import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { FlattenedJWE } from 'jose';
import knexFactory, { type Knex } from 'knex';
import { InvalidConfig } from '../../interfaces/errors.js';
import { BrokerAdminClient } from '../../lib/broker/broker-admin-client.js';
import { startBrokerCluster, type RunningBrokerCluster } from '../../lib/broker/broker-cluster.js';
import { BROKER_KEY_FILES } from '../../lib/broker/broker-keys.js';
import type { RuntimeData } from '../../lib/broker/kbs-wire.js';
import { SessionCookies } from '../../lib/broker/session-cookie.js';
import { KbsClientBuilder } from '../../lib/kbs-client/kbs-client-builder.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { TeeKeyPair } from '../../lib/kbs-client/tee-key-pair.js';
import { TpmEvidenceProvider } from '../../lib/kbs-client/tpm-evidence-provider.js';
import { loadOrCreateClientTls } from '../../lib/pki/service-tls.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { brokerReportData, refusal, softwareTestNode, type TestNode } from './helpers/broker-fixture.js';

/**
 * `ironlime broker --workers 2`: two worker processes (node:cluster) on one port and one PostgreSQL
 * schema. Every request is sent on a connection of its own, so the cluster spreads them over both
 * workers: a session begun in one worker attests in another, and a nonce is used once in all of them.
 */
describe('broker: worker processes (node:cluster)', function () {
  this.timeout(120_000);
  let dataDir: string;
  let schema: string;
  let admin: Knex;
  let cluster: RunningBrokerCluster;
  let node: TestNode;
  const secret = new Uint8Array(Buffer.from('disk key served by any worker'));

  /** One request on a connection of its own, so it may reach either worker. */
  async function once(method: 'GET' | 'POST', route: string, options: { body?: unknown; headers?: Record<string, string> } = {}): ReturnType<KbsHttp['send']> {
    const http = new KbsHttp({ url: cluster.url, ca: cluster.caCert });
    try {
      return await http.send(method, route, options);
    } finally {
      await http.close();
    }
  }

  async function auth(): Promise<{ cookie: string; nonce: string }> {
    const reply = await once('POST', '/kbs/v0/auth', { body: { version: '0.4.0', tee: 'tpm' } });
    return { cookie: String(reply.headers['set-cookie']).split(';')[0] as string, nonce: (reply.body as { nonce: string }).nonce };
  }

  async function attestBody(nonce: string): Promise<{ body: unknown; key: TeeKeyPair }> {
    const key = await TeeKeyPair.generate('ec');
    const runtimeData: RuntimeData = { nonce, 'tee-pubkey': key.publicJwk };
    const evidence = new TpmEvidenceProvider({ tpm: node.tpm, agentId: node.agentId, imaLogPath: node.emulated.imaLogPath, bootLogPath: node.emulated.bootLogPath });
    return { body: { 'runtime-data': runtimeData, 'tee-evidence': { primary_evidence: await evidence.primaryEvidence(brokerReportData(runtimeData)) } }, key };
  }

  before(async function () {
    dataDir = await mkdtemp(path.join(tmpdir(), 'ironlime-broker-workers-'));
    schema = `test_${randomBytes(8).toString('hex')}`;
    admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw('create schema ??', [schema]);
    cluster = await startBrokerCluster(
      { dataDir, port: 0, databaseUrl: TEST_DATABASE_URL },
      { workers: 2, searchPath: schema, workerScript: path.join(import.meta.dirname, 'helpers', 'broker-worker.js') },
    );
    node = await softwareTestNode();
    const tls = await loadOrCreateClientTls({ dataDir, serviceName: 'broker-admin' });
    const adminClient = new BrokerAdminClient({ url: cluster.url, ca: cluster.caCert, cert: tls.cert, key: tls.key });
    await adminClient.putNode(node.agentId, { akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy(), mbRefstate: await node.refstate() });
    await adminClient.putResource({ repository: 'node', type: 'disk-key', tag: 'workers' }, secret, { agents: [node.agentId] });
    await adminClient.close();
  });

  after(async function () {
    await cluster?.close();
    await node?.dispose();
    await admin?.raw('drop schema if exists ?? cascade', [schema]);
    await admin?.destroy();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves full exchanges whose auth, attest and resource requests land on any worker', async function () {
    for (let round = 0; round < 3; round += 1) {
      const session = await auth();
      const { body, key } = await attestBody(session.nonce);
      await once('POST', '/kbs/v0/attest', { body, headers: { cookie: session.cookie } });
      const jwe = await once('GET', '/kbs/v0/resource/node/disk-key/workers', { headers: { cookie: session.cookie } });
      expect(await key.decrypt(jwe.body as FlattenedJWE)).to.deep.equal(secret);
    }
    const built = new KbsClientBuilder(cluster.url)
      .ca(cluster.caCert)
      .evidenceProvider(new TpmEvidenceProvider({ tpm: node.tpm, agentId: node.agentId, imaLogPath: node.emulated.imaLogPath, bootLogPath: node.emulated.bootLogPath }))
      .build();
    try {
      expect(await built.client.getResource('kbs:///node/disk-key/workers')).to.deep.equal(secret);
    } finally {
      await built.close();
    }
  });

  it('a nonce is used once across workers: of six concurrent attests on one session exactly one gets a token', async function () {
    const session = await auth();
    const { body } = await attestBody(session.nonce);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 6 }, () => once('POST', '/kbs/v0/attest', { body, headers: { cookie: session.cookie } })),
    );
    const tokens = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    expect(tokens).to.have.length(1);
    for (const outcome of outcomes.filter((o) => o.status === 'rejected')) {
      const error = await refusal(Promise.reject((outcome as PromiseRejectedResult).reason));
      expect([error.remoteHttpStatus, error.kbsType]).to.deep.equal([401, 'AttestationError']);
    }
    const later = await refusal(once('POST', '/kbs/v0/attest', { body, headers: { cookie: session.cookie } }));
    expect(later.detail).to.equal('this session has already attested');
  });

  it('a node changed in the database after the workers compiled it is appraised against the stored policy by every worker', async function () {
    const exchange = async (): Promise<unknown> => {
      const session = await auth();
      const { body } = await attestBody(session.nonce);
      return (await once('POST', '/kbs/v0/attest', { body, headers: { cookie: session.cookie } })).body;
    };
    // Written behind both workers' backs, as another broker on the same database would.
    const storeTpmPolicy = (policy: string): Promise<number> =>
      admin.withSchema(schema).table('broker_nodes').where({ agent_id: node.agentId }).update({ tpm_policy: policy, digest: createHash('sha256').update(policy).digest('hex') });
    for (let round = 0; round < 4; round += 1) {
      expect(await exchange(), 'both workers compile the node').to.have.property('token');
    }
    expect(await storeTpmPolicy(JSON.stringify({ '0': ['ab'.repeat(32)] }))).to.equal(1);
    for (let round = 0; round < 4; round += 1) {
      const error = await refusal(exchange());
      expect([error.kbsType, error.detail.startsWith('evidence refused')], `round ${round}: ${error.detail}`).to.deep.equal(['AttestationError', true]);
    }
    expect(await storeTpmPolicy('{}')).to.equal(1);
    for (let round = 0; round < 4; round += 1) {
      expect(await exchange(), 'the first policy again').to.have.property('token');
    }
  });

  it('refuses forged and expired session cookies with the KBS error types, at attest and at resource', async function () {
    const session = await auth();
    const { body } = await attestBody(session.nonce);
    const value = session.cookie.split('=')[1] as string;
    const forged = `kbs-session-id=${value.slice(0, 10)}${value[10] === 'A' ? 'B' : 'A'}${value.slice(11)}`;
    const atAttest = await refusal(once('POST', '/kbs/v0/attest', { body, headers: { cookie: forged } }));
    expect([atAttest.remoteHttpStatus, atAttest.kbsType]).to.deep.equal([401, 'AttestationError']);
    const atResource = await refusal(once('GET', '/kbs/v0/resource/node/disk-key/workers', { headers: { cookie: forged } }));
    expect([atResource.remoteHttpStatus, atResource.kbsType]).to.deep.equal([401, 'TokenVerifierError']);
    // A cookie this broker's key did sign, six minutes ago: past the 5-minute session.
    const master = Buffer.from((await readFile(path.join(dataDir, BROKER_KEY_FILES.dir, BROKER_KEY_FILES.masterKey), 'utf8')).trim(), 'base64');
    const expired = new SessionCookies(new Uint8Array(master), 300_000).issue(Date.now() - 360_000);
    const late = await attestBody(expired.session.nonce);
    const stale = await refusal(once('POST', '/kbs/v0/attest', { body: late.body, headers: { cookie: `kbs-session-id=${expired.cookie}` } }));
    expect([stale.kbsType, stale.detail]).to.deep.equal(['AttestationError', 'the session has expired']);
    // The original session is untouched by the refused attempts and still attests once.
    await once('POST', '/kbs/v0/attest', { body, headers: { cookie: session.cookie } });
  });

  it('a revoked node\'s token is refused by every worker, though each has it verified and cached', async function () {
    const built = new KbsClientBuilder(cluster.url)
      .ca(cluster.caCert)
      .mode('passport')
      .evidenceProvider(new TpmEvidenceProvider({ tpm: node.tpm, agentId: node.agentId, imaLogPath: node.emulated.imaLogPath, bootLogPath: node.emulated.bootLogPath }))
      .build();
    const tls = await loadOrCreateClientTls({ dataDir, serviceName: 'broker-admin' });
    const adminClient = new BrokerAdminClient({ url: cluster.url, ca: cluster.caCert, cert: tls.cert, key: tls.key });
    // Each request on a connection of its own: cluster's round robin gives every worker several of eight.
    const fetch = (token: string): ReturnType<KbsHttp['send']> =>
      once('GET', '/kbs/v0/resource/node/disk-key/workers', { headers: { authorization: `Bearer ${token}` } });
    try {
      const token = await built.client.token();
      for (let request = 0; request < 8; request += 1) {
        await fetch(token);
      }
      await adminClient.revoke(node.agentId, 'failed attestation');
      for (let request = 0; request < 8; request += 1) {
        const error = await refusal(fetch(token));
        expect([error.remoteHttpStatus, error.kbsType, error.detail], `request ${request}`).to.deep.equal([401, 'TokenVerifierError', `node ${node.agentId} is revoked`]);
      }
    } finally {
      await adminClient.reinstate(node.agentId);
      await adminClient.close();
      await built.close();
    }
  });

  it('refuses more than one worker on the embedded database (PGlite is one process\'s)', async function () {
    try {
      await startBrokerCluster({ dataDir, port: 0 }, { workers: 2 });
      expect.fail('started');
    } catch (error) {
      expect(error).to.be.instanceOf(InvalidConfig);
    }
  });
});
