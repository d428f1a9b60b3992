import { expect } from 'chai';
import type { Database } from '../../lib/db/database-factory.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { openSchemaThroughPort } from '../helpers/databases.js';
import { useMigratedTestSchema } from '../helpers/migrated-test-schema.js';
import { StatementCutProxy } from '../helpers/statement-cut-proxy.js';
import { attestedSession, softwareTestNode, startTestBroker, type AttestedSession, type TestBroker, type TestNode } from './helpers/broker-fixture.js';
import { expectRefused } from './helpers/kbs-refusals.js';

const DISK_KEY = { repository: 'node', type: 'disk-key', tag: 'cut-rack' };
const DISK_KEY_ROUTE = '/kbs/v0/resource/node/disk-key/cut-rack';
const SECRET = Buffer.from('the disk key of cut-rack');

/**
 * PostgreSQL goes away (a TCP proxy cuts every connection) at the very statement that claims an
 * attested session, that appends the attestation's audit record after the claim in the same
 * transaction, or that appends a release's record. Nothing may leave without its record committed:
 * the client gets the KBS 500 `InternalError`, no token, no secret, no attested session; once the
 * database is back a new attestation, or the same credentials, get what they ask for.
 */
describe('broker: the database cut while it records an attestation or a release (TCP proxy, real PostgreSQL)', function () {
  this.timeout(60_000);
  const schema = useMigratedTestSchema();
  let proxy: StatementCutProxy;
  let database: Database;
  let broker: TestBroker;
  let http: KbsHttp;
  let node: TestNode;

  const opened = async (session: AttestedSession, reply: Promise<unknown>): Promise<Buffer> =>
    Buffer.from(await session.key.decrypt(((await reply) as { body: { protected: string; encrypted_key: string; iv: string; ciphertext: string; tag: string } }).body));
  const withCookie = (session: AttestedSession): Promise<unknown> => http.send('GET', DISK_KEY_ROUTE, { headers: { cookie: session.cookie } });
  const attestedRows = async (): Promise<number> =>
    Number((await schema.knex('broker_sessions').where({ agent_id: node.agentId }).whereNotNull('attested_at').count({ n: '*' }))[0]?.n);
  const records = async (action: string): Promise<number> =>
    Number((await schema.knex('broker_audit_records').where({ agent_id: node.agentId, action }).count({ n: '*' }))[0]?.n);

  before(async function () {
    proxy = new StatementCutProxy();
    await proxy.start();
    database = await openSchemaThroughPort(schema.knex, proxy.port);
    broker = await startTestBroker({}, database);
    http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    node = await softwareTestNode();
    await broker.admin.putNode(node.agentId, { akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy(), mbRefstate: await node.refstate(), groups: ['cut-rack'] });
    await broker.admin.putResource(DISK_KEY, new Uint8Array(SECRET), { groups: ['cut-rack'] });
  });

  afterEach(function () {
    proxy.restore();
  });

  after(async function () {
    proxy?.restore();
    await node?.dispose();
    await broker?.dispose();
    await proxy?.close();
    await database?.close();
  });

  for (const [name, marker] of [
    ['its claim', 'insert into broker_sessions (id, nonce, tee, expires_at, agent_id'],
    ['its audit record, after the claim in the same transaction', 'insert into broker_audit_records'],
  ] as const) {
    it(`an attestation cut at ${name}: 500 InternalError, no token, no attested session; attested again once the database is back`, async function () {
      const attestedBefore = await attestedRows();
      const recordsBefore = await records('node.attest');
      const cutsBefore = proxy.cuts;
      proxy.cutAt(marker);
      const error = await attestedSession(http, node).then(
        () => expect.fail('an attestation cut from its database was answered'),
        (refused: unknown) => refused,
      );
      expect(proxy.cuts).to.equal(cutsBefore + 1);
      expect(String(error)).to.match(/500/);
      proxy.restore();
      expect(await attestedRows()).to.equal(attestedBefore);
      expect(await records('node.attest')).to.equal(recordsBefore);
      const session = await attestedSession(http, node);
      expect(await opened(session, withCookie(session))).to.deep.equal(SECRET);
    });
  }

  it('a release cut at its audit record: 500 InternalError, no secret; the same cookie releases once the database is back', async function () {
    const session = await attestedSession(http, node);
    const releasesBefore = await records('resource.release');
    proxy.cutAt('insert into broker_audit_records');
    await expectRefused(withCookie(session), 500, 'InternalError');
    expect(proxy.cuts).to.be.at.least(1);
    proxy.restore();
    expect(await records('resource.release')).to.equal(releasesBefore);
    expect(await opened(session, withCookie(session))).to.deep.equal(SECRET);
    expect(await records('resource.release')).to.equal(releasesBefore + 1);
  });
});
