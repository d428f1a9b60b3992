import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { AuditLog } from '../../lib/audit/audit-log.js';
import { loadAuditKey, loadOrCreateAuditKey } from '../../lib/audit/audit-signing-key.js';
import { BROKER_AUDIT_TABLES } from '../../lib/audit/audit-tables.js';
import { verifyAuditExport } from '../../lib/audit/verify-audit-export.js';
import type { RevocationMessage } from '../../lib/revocation/revocation-message.js';
import { exportCollected, exportText } from '../audit/helpers/sealed-export.js';
import { createDatabase } from '../../lib/db/database-factory.js';
import { runCli } from '../helpers/cli-runner.js';
import { forEachDatabase, TEST_DATABASE_URL } from '../helpers/databases.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { attestedSession, refusal, softwareTestNode, startTestBroker, type TestBroker } from './helpers/broker-fixture.js';

const AGENT = '5b0f2c1e-3a4d-4e6f-8a9b-0c1d2e3f4a5b';
const RESOURCE = { repository: 'node', type: 'disk-key', tag: 'audited' };

/** A verifier's revocation message for AGENT, as the in-process target hands it over (signature checked by the caller). */
const MESSAGE: RevocationMessage = {
  type: 'revocation',
  ip: null,
  agent_id: AGENT,
  port: null,
  tpm_policy: '{}',
  meta_data: '{}',
  event_time: 'Sun Dec  6 15:00:00 2026',
  event_id: 'ima.file_hash_mismatch',
  severity_label: 'emergency',
  context: '{}',
};

/**
 * Every change of what the broker releases and to whom (a node stored or deleted, a resource stored or
 * deleted, a revocation recorded by an administrator or a verifier's message, a reinstatement) is a
 * record of the signed audit log (docs/audit.md), committed with the change: a grant (a node or a
 * resource stored, a reinstatement) whose record cannot be stored is refused and not applied; a
 * withdrawal (a revocation, a deletion) is applied all the same. Before, the broker recorded none of them anywhere but
 * its process log.
 */
forEachDatabase('broker: admin changes in the signed audit log', (fixture) => {
  let broker: TestBroker;

  before(async function () {
    broker = await startTestBroker({}, fixture.database);
  });

  after(async function () {
    await broker?.dispose();
  });

  it('records each change with who made it, in a chain of its own that verifies with the broker\'s audit key', async function () {
    // A verifier on the same database: its chain of the node must still verify with its own key.
    const verifierDir = await mkdtemp(path.join(tmpdir(), 'ironlime-broker-audit-verifier-'));
    const verifierKey = loadOrCreateAuditKey(verifierDir);
    const verifierEvent = { stream: AGENT, at: new Date().toISOString(), actor: 'verifier:test', action: 'verdict', agentId: AGENT, details: { outcome: 'pass' } };
    await new AuditLog(fixture.database.knex, verifierKey).append(verifierEvent);
    await broker.admin.putNode(AGENT, { groups: ['rack4'] });
    await broker.admin.putResource(RESOURCE, new Uint8Array([1, 2, 3]), { agents: [AGENT] });
    await broker.admin.revoke(AGENT, 'disk swapped');
    await broker.admin.reinstate(AGENT);
    await broker.running.service.revocations.revokeByMessage(MESSAGE);
    await broker.admin.reinstate(AGENT);
    await broker.admin.deleteResource(RESOURCE);
    await broker.admin.deleteNode(AGENT);

    const key = loadAuditKey(broker.dataDir);
    const exported = await exportCollected(fixture.database.knex, key, {}, undefined, BROKER_AUDIT_TABLES);
    const seen = exported.records.map((record) => [record.stream, record.action, record.actor]);
    expect(seen).to.deep.equal([
      [AGENT, 'node.put', 'cert:broker-admin'],
      [AGENT, 'node.revoke', 'cert:broker-admin'],
      [AGENT, 'node.reinstate', 'cert:broker-admin'],
      [AGENT, 'node.revoke', 'verifier revocation message'],
      [AGENT, 'node.reinstate', 'cert:broker-admin'],
      [AGENT, 'node.delete', 'cert:broker-admin'],
      ['fleet', 'resource.put', 'cert:broker-admin'],
      ['fleet', 'resource.delete', 'cert:broker-admin'],
    ]);
    const resourcePut = exported.records.find((record) => record.action === 'resource.put');
    // The policy is recorded, never the secret.
    expect(resourcePut?.details).to.deep.equal({ resource: 'node/disk-key/audited', policy: { agents: [AGENT], groups: [], allow_tokens: true, verifier_standing: false } });
    expect(exported.records.find((record) => record.actor === 'verifier revocation message')?.details).to.include({ event_id: 'ima.file_hash_mismatch' });
    expect(verifyAuditExport(exportText(exported), key.publicKey).valid).to.equal(true);

    await new AuditLog(fixture.database.knex, verifierKey).append(verifierEvent);
    const verifierLog = await exportCollected(fixture.database.knex, verifierKey, {});
    expect(verifierLog.records.map((record) => record.actor)).to.deep.equal(['verifier:test', 'verifier:test']);
    expect(verifyAuditExport(exportText(verifierLog), verifierKey.publicKey).valid).to.equal(true);
    await rm(verifierDir, { recursive: true, force: true });
  });

  it('keeps a record of a policy listing thousands of nodes under the export line bound, so the export still verifies', async function () {
    const agents = Array.from({ length: 20_000 }, (_, index) => `node-${String(index).padStart(74, '0')}`);
    const big = { ...RESOURCE, tag: 'shared' };
    await broker.admin.putResource(big, new Uint8Array([4]), { agents, groups: ['rack4'] });
    await broker.admin.putNode(AGENT, { groups: agents });
    const key = loadAuditKey(broker.dataDir);
    const exported = await exportCollected(fixture.database.knex, key, {}, undefined, BROKER_AUDIT_TABLES);
    const put = exported.records.filter((record) => record.action === 'resource.put').at(-1);
    expect(put?.details).to.deep.include({ resource: 'node/disk-key/shared' });
    expect(verifyAuditExport(exportText(exported), key.publicKey).valid).to.equal(true);
    expect((put?.details['policy'] as Record<string, unknown>)['agents']).to.include({ count: 20_000 });
    await broker.admin.deleteResource(big);
    await broker.admin.deleteNode(AGENT);
  });

  it('keeps a record of a verifier message with a long event_id under the export line bound, so the export still verifies', async function () {
    const long = { ...MESSAGE, agent_id: 'long-event-node', event_id: `ima.${'x'.repeat(600 * 1024)}` };
    expect(await broker.running.service.revocations.revokeByMessage(long)).to.equal(true);
    const key = loadAuditKey(broker.dataDir);
    const exported = await exportCollected(fixture.database.knex, key, { stream: 'long-event-node' }, undefined, BROKER_AUDIT_TABLES);
    expect(exported.records.map((record) => record.action)).to.deep.equal(['node.revoke']);
    expect(verifyAuditExport(exportText(exported), key.publicKey).valid).to.equal(true);
    expect(exported.records[0]?.details['event_id']).to.include({ length: long.event_id.length });
  });

  it('records nothing for a change that changed nothing (a second delete, a message applied before)', async function () {
    const before = Number((await fixture.database.knex('broker_audit_records').count({ n: '*' }))[0]?.n);
    expect((await refusal(broker.admin.deleteResource(RESOURCE))).remoteHttpStatus).to.equal(404);
    expect(await broker.running.service.revocations.revokeByMessage(MESSAGE)).to.equal(false);
    expect(Number((await fixture.database.knex('broker_audit_records').count({ n: '*' }))[0]?.n)).to.equal(before);
  });

  it('refuses a grant whose record cannot be stored, unapplied; applies a withdrawal all the same', async function () {
    const knex = fixture.database.knex;
    await broker.admin.putNode(AGENT, { groups: ['rack4'] });
    await knex.raw('alter table broker_audit_records rename to broker_audit_records_away');
    try {
      const refused = await refusal(broker.admin.putResource(RESOURCE, new Uint8Array([6]), { agents: [AGENT] }));
      expect(refused.remoteHttpStatus).to.equal(500);
      // A withdrawal never waits on the log: the node is revoked, the loss of its record logged at error.
      await broker.admin.revoke(AGENT, 'unrecorded');
      const reinstated = await refusal(broker.admin.reinstate(AGENT));
      expect(reinstated.remoteHttpStatus).to.equal(500);
    } finally {
      await knex.raw('alter table broker_audit_records_away rename to broker_audit_records');
    }
    expect(await knex('broker_resources').where(RESOURCE).select('tag')).to.deep.equal([]);
    expect(await knex('broker_revocations').where({ agent_id: AGENT, reason: 'unrecorded' }).whereNull('reinstated_at').select('agent_id')).to.deep.equal([{ agent_id: AGENT }]);
  });
});

describe('ironlime audit export --broker: the broker\'s own log, checked by audit verify with the broker\'s key', function () {
  this.timeout(120_000);
  const schema = `test_${randomBytes(8).toString('hex')}`;
  let admin: Knex;

  before(async function () {
    admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw('create schema ??', [schema]);
  });

  after(async function () {
    await admin.raw('drop schema if exists ?? cascade', [schema]);
    await admin.destroy();
  });

  it('exports the broker\'s records and no verifier record, and the export verifies', async function () {
    const url = new URL(TEST_DATABASE_URL);
    url.searchParams.set('options', `-c search_path=${schema}`);
    const database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: tmpdir(), searchPath: schema });
    const broker = await startTestBroker({}, database);
    try {
      await mkdir(`${broker.dataDir}-verifier`);
      const verifierKey = loadOrCreateAuditKey(`${broker.dataDir}-verifier`);
      await new AuditLog(database.knex, verifierKey).append({ stream: AGENT, at: new Date().toISOString(), actor: 'verifier:test', action: 'verdict', agentId: AGENT, details: {} });
      await broker.admin.putNode(AGENT, { groups: ['rack4'] });
      await broker.admin.revoke(AGENT, 'disk swapped');
      // A node's attestation and the secret it fetched: their records export and verify with the admin changes'.
      const node = await softwareTestNode();
      try {
        await broker.admin.putNode(node.agentId, { akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy() });
        await broker.admin.putResource(RESOURCE, new Uint8Array([5]), { agents: [node.agentId] });
        const http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
        const session = await attestedSession(http, node);
        await http.send('GET', '/kbs/v0/resource/node/disk-key/audited', { headers: { cookie: session.cookie } });
      } finally {
        await node.dispose();
      }
      const file = path.join(broker.dataDir, 'broker-audit.jsonl');
      const exported = await runCli(['audit', 'export', '--broker', '--data-dir', broker.dataDir, '--database', url.toString(), '--out', file]);
      expect(exported.code, exported.stderr).to.equal(0);
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
      expect(lines.slice(0, -1).map((line) => (JSON.parse(line) as { action: string }).action).sort()).to.deep.equal(
        ['node.attest', 'node.put', 'node.put', 'node.revoke', 'resource.put', 'resource.release'],
      );
      const verified = await runCli(['audit', 'verify', file, '--data-dir', broker.dataDir]);
      expect(verified.code, verified.stdout).to.equal(0);
      expect(verified.stdout).to.contain('valid: 6 record(s)');
    } finally {
      await rm(`${broker.dataDir}-verifier`, { recursive: true, force: true });
      await broker.dispose();
      await database.close();
    }
  });
});
