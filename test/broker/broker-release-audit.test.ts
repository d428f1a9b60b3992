import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { loadAuditKey } from '../../lib/audit/audit-signing-key.js';
import { BROKER_AUDIT_TABLES } from '../../lib/audit/audit-tables.js';
import type { AuditRecord } from '../../lib/audit/audit-record.js';
import { verifyAuditExport } from '../../lib/audit/verify-audit-export.js';
import { RevocationStore } from '../../lib/broker/revocation-store.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { exportCollected, exportText } from '../audit/helpers/sealed-export.js';
import { forEachDatabase } from '../helpers/databases.js';
import { attestedSession, softwareTestNode, startTestBroker, type AttestedSession, type TestBroker, type TestNode } from './helpers/broker-fixture.js';
import { expectRefused } from './helpers/kbs-refusals.js';

const DISK_KEY = { repository: 'node', type: 'disk-key', tag: 'audit-rack' };
const DISK_KEY_ROUTE = '/kbs/v0/resource/node/disk-key/audit-rack';
const OTHERS_ROUTE = '/kbs/v0/resource/node/disk-key/someone-else';
const SECRET = Buffer.from('the disk key of audit-rack, never in the log');

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * A resource handed to a node, and the attestation that earned its credentials, are records of the
 * broker's signed audit log (docs/audit.md, "What is appended"), committed before the secret or the
 * token leaves: a release or an attestation whose record cannot be stored is refused (500) and nothing
 * is handed out. Before, neither was recorded anywhere but the process log. Software TPM, real quotes,
 * PostgreSQL and PGlite.
 */
forEachDatabase('broker: attestations and releases in the signed audit log', (fixture) => {
  let broker: TestBroker;
  let http: KbsHttp;
  let node: TestNode;

  const withCookie = (session: AttestedSession, route: string): Promise<unknown> => http.send('GET', route, { headers: { cookie: session.cookie } });
  const withToken = (token: string, route: string): Promise<unknown> => http.send('GET', route, { headers: { authorization: `Bearer ${token}` } });
  const opened = async (session: AttestedSession, reply: Promise<unknown>): Promise<Uint8Array> =>
    session.key.decrypt(((await reply) as { body: { protected: string; encrypted_key: string; iv: string; ciphertext: string; tag: string } }).body);
  const nodeRecords = async (): Promise<{ records: readonly AuditRecord[]; text: string }> => {
    const exported = await exportCollected(fixture.database.knex, loadAuditKey(broker.dataDir), { stream: node.agentId }, undefined, BROKER_AUDIT_TABLES);
    return { records: exported.records, text: exportText(exported) };
  };

  before(async function () {
    this.timeout(60_000);
    broker = await startTestBroker({}, fixture.database);
    http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    node = await softwareTestNode();
    await broker.admin.putNode(node.agentId, { akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy(), mbRefstate: await node.refstate(), groups: ['audit-rack'] });
    await broker.admin.putResource(DISK_KEY, new Uint8Array(SECRET), { groups: ['audit-rack'], required_claims: ['configuration'] });
    await broker.admin.putResource({ ...DISK_KEY, tag: 'someone-else' }, new Uint8Array([7]), { agents: ['another-node'] });
  });

  after(async function () {
    await node?.dispose();
    await broker?.dispose();
  });

  it('records the attestation and each release, naming the credential and the appraisal, never the secret, and the export verifies', async function () {
    this.timeout(30_000);
    const session = await attestedSession(http, node);
    expect(Buffer.from(await opened(session, withCookie(session, DISK_KEY_ROUTE)))).to.deep.equal(SECRET);
    expect(Buffer.from(await opened(session, withToken(session.token, DISK_KEY_ROUTE)))).to.deep.equal(SECRET);
    // Refusals release nothing and are not recorded (anyone holding a credential could make them at will).
    await expectRefused(withCookie(session, OTHERS_ROUTE), 403, 'PolicyDeny');
    await expectRefused(withToken(`${session.token.slice(0, -4)}AAAA`, DISK_KEY_ROUTE), 401, 'TokenVerifierError');

    const { records, text } = await nodeRecords();
    expect(records.map((record) => [record.action, record.actor])).to.deep.equal([
      ['node.put', 'cert:broker-admin'],
      ['node.attest', 'node'],
      ['resource.release', 'node'],
      ['resource.release', 'node'],
    ]);
    const [, attest, bySession, byToken] = records as [AuditRecord, AuditRecord, AuditRecord, AuditRecord];
    const put = records[0] as AuditRecord;
    expect(attest.details).to.include({ token_sha256: sha256(session.token), node_digest: put.details['digest'] });
    expect(attest.details['vector']).to.deep.equal({ 'instance-identity': 2, hardware: 2, configuration: 2, executables: 2 });
    expect(bySession.details).to.deep.include({
      resource: 'node/disk-key/audit-rack',
      via: 'session',
      session_sha256: attest.details['session_sha256'],
      ak_sha256: sha256(node.akTpm),
      tee_key_sha256: attest.details['tee_key_sha256'],
      verifier_standing: false,
    });
    expect(bySession.details['vectors']).to.deep.equal([{ source: 'the session', vector: attest.details['vector'] }]);
    expect(byToken.details).to.deep.include({ via: 'token', token_sha256: sha256(session.token), issuer: 'ironlime-broker', tee_key_sha256: attest.details['tee_key_sha256'] });
    expect(byToken.details['issued_at']).to.equal(new Date(Math.floor(Date.parse(attest.at) / 1000) * 1000).toISOString());
    expect(text).not.to.contain(SECRET.toString('base64'));
    expect(text).not.to.contain(session.token);
    expect(verifyAuditExport(text, loadAuditKey(broker.dataDir).publicKey).valid).to.equal(true);
  });

  it('refuses a release and an attestation whose record cannot be stored: 500, no secret, no token, no attested session', async function () {
    this.timeout(30_000);
    const knex = fixture.database.knex;
    const attestedRows = async (): Promise<number> => Number((await knex('broker_sessions').where({ agent_id: node.agentId }).count({ n: '*' }))[0]?.n);
    const session = await attestedSession(http, node);
    const before = (await nodeRecords()).records.length;
    const sessionsBefore = await attestedRows();
    await knex.raw('alter table broker_audit_records rename to broker_audit_records_away');
    let blocked: AttestedSession | undefined;
    try {
      await expectRefused(withCookie(session, DISK_KEY_ROUTE), 500, 'InternalError', 'cookie');
      await expectRefused(withToken(session.token, DISK_KEY_ROUTE), 500, 'InternalError', 'token');
      blocked = await attestedSession(http, node).then(
        () => expect.fail('an attestation whose record cannot be stored was answered'),
        (error: unknown) => {
          expect(String(error)).to.contain('500');
          return undefined;
        },
      );
    } finally {
      await knex.raw('alter table broker_audit_records_away rename to broker_audit_records');
    }
    expect(blocked).to.equal(undefined);
    // The refused attestation's session was claimed with its record, so neither stayed: its cookie releases nothing.
    expect(await attestedRows()).to.equal(sessionsBefore);
    expect((await nodeRecords()).records.length).to.equal(before);
    // The log takes records again: the same credentials release, recorded.
    expect(Buffer.from(await opened(session, withCookie(session, DISK_KEY_ROUTE)))).to.deep.equal(SECRET);
    expect((await nodeRecords()).records.map((record) => record.action).slice(before)).to.deep.equal(['resource.release']);
  });

  it('refuses a release whose node was revoked after its facts were read, once the revocation holding the node\'s stream commits', async function () {
    if (fixture.kind !== 'postgres') this.skip(); // PGlite has one connection: no second transaction can hold the stream.
    this.timeout(30_000);
    const knex = fixture.database.knex;
    const session = await attestedSession(http, node);
    const before = (await nodeRecords()).records.length;
    // A revocation as the broker writes one: the row, then its record's lock on the node's stream, uncommitted.
    const trx = await knex.transaction();
    let release: Promise<unknown> | undefined;
    try {
      await new RevocationStore(trx).revoke(node.agentId, Math.floor(Date.now() / 1000), 'revoked while a release ran');
      await trx.raw('select seq from broker_audit_heads where stream = ? for update', [node.agentId]);
      const holder = ((await trx.raw('select pg_backend_pid() as pid')) as { rows: { pid: number }[] }).rows[0]?.pid ?? -1;
      // Its facts read sees no revocation yet; its record then waits for the stream.
      release = withToken(session.token, DISK_KEY_ROUTE);
      release.catch(() => undefined); // awaited below, after the commit
      for (let waited = 0; ; waited += 1) {
        const blocked = (await knex.raw('select count(*)::int as n from pg_stat_activity where ? = any(pg_blocking_pids(pid))', [holder])) as { rows: { n: number }[] };
        if (blocked.rows[0]?.n === 1) break;
        expect(waited, 'the release reached the locked stream').to.be.below(1_000);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await trx.commit();
    } catch (error) {
      await trx.rollback();
      throw error;
    }
    await expectRefused(release, 401, 'TokenVerifierError');
    expect((await nodeRecords()).records.length).to.equal(before);
    await knex('broker_revocations').where({ agent_id: node.agentId }).delete();
  });

  it('records releases that queued behind a busy transaction in one batch (one signature), a release refused in it unrecorded, and the export verifies', async function () {
    if (fixture.kind !== 'postgres') this.skip(); // PGlite has one connection: no second transaction can hold the stream.
    this.timeout(30_000);
    const knex = fixture.database.knex;
    const session = await attestedSession(http, node);
    const spare = { ...DISK_KEY, tag: 'audit-rack-spare' };
    await broker.admin.putResource(spare, new Uint8Array([9]), { groups: ['audit-rack'] });
    const before = (await nodeRecords()).records.length;
    // The first release takes the writer and waits on the node's stream, held here; the others queue behind it.
    const trx = await knex.transaction();
    const releases: Promise<unknown>[] = [];
    let spareRelease: Promise<unknown> | undefined;
    try {
      await trx.raw('select seq from broker_audit_heads where stream = ? for update', [node.agentId]);
      const holder = ((await trx.raw('select pg_backend_pid() as pid')) as { rows: { pid: number }[] }).rows[0]?.pid ?? -1;
      releases.push(withToken(session.token, DISK_KEY_ROUTE));
      for (let waited = 0; ; waited += 1) {
        const blocked = (await knex.raw('select count(*)::int as n from pg_stat_activity where ? = any(pg_blocking_pids(pid))', [holder])) as { rows: { n: number }[] };
        if (blocked.rows[0]?.n === 1) break;
        expect(waited, 'the first release reached the locked stream').to.be.below(1_000);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      for (let i = 0; i < 5; i += 1) releases.push(withToken(session.token, DISK_KEY_ROUTE));
      spareRelease = withToken(session.token, `/kbs/v0/resource/node/disk-key/${spare.tag}`);
      spareRelease.catch(() => undefined); // awaited below, after the commit
      // Their first reads done, they wait for the writer (no state to poll: a generous pause, not a timing assertion).
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await trx('broker_resources').where(spare).delete();
      await trx.commit();
    } catch (error) {
      await trx.rollback();
      throw error;
    }
    for (const release of releases) expect(Buffer.from(await opened(session, release))).to.deep.equal(SECRET);
    await expectRefused(spareRelease as Promise<unknown>, 404, 'PluginNotFound');
    const { records, text } = await nodeRecords();
    const added = records.slice(before);
    expect(added.map((record) => [record.action, (record.details as { resource: string }).resource])).to.deep.equal(
      releases.map(() => ['resource.release', 'node/disk-key/audit-rack']),
    );
    expect(added.filter((record) => record.batchPath.length > 0).length, 'records signed as one batch').to.be.at.least(2);
    expect(verifyAuditExport(text, loadAuditKey(broker.dataDir).publicKey).valid).to.equal(true);
  });
});
