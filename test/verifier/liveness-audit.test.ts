import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AuditLog } from '../../lib/audit/audit-log.js';
import { loadOrCreateAuditKey } from '../../lib/audit/audit-signing-key.js';
import { LivenessRepository } from '../../lib/verifier/liveness/liveness-repository.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { seesEveryTenant, storeLivenessState } from '../helpers/liveness-state.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';

/** A node without a TPM has no quote verdicts: its status changes are what the signed audit history holds of it. */
describe('liveness: each status change is a signed audit record in the node\'s stream', function () {
  this.timeout(30_000);
  const agentId = 'audited-liveness-node';
  let opened: OpenedDatabase;
  let dataDir: string;
  let repository: LivenessRepository;

  before(async () => {
    opened = await openMigratedTestSchema();
    dataDir = mkdtempSync(path.join(tmpdir(), 'ironlime-liveness-audit-'));
    repository = new LivenessRepository(opened.database.knex, { log: new AuditLog(opened.database.knex, loadOrCreateAuditKey(dataDir)), actor: 'v1' });
    await repository.enrol({ agentId, tenant: 'default', verifierId: 'default', mode: 'id-only', trustLevel: 'id-only', ip: '127.0.0.1', port: 1, mtlsCert: 'unused', proofKey: null }, noAuditRecord, seesEveryTenant);
  });
  after(async () => {
    await opened?.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('pending → alive → unreachable → alive are three records with from, to and reason; a check that changes nothing adds none', async () => {
    await storeLivenessState(repository, agentId, { status: 'alive', misses: 0, lastSeen: 1000, lastFailure: null });
    await storeLivenessState(repository, agentId, { status: 'alive', misses: 1, lastSeen: 1000, lastFailure: null });
    await storeLivenessState(repository, agentId, { status: 'unreachable', misses: 5, lastSeen: 1000, lastFailure: 'no answer to 5 liveness checks in a row: refused' });
    await storeLivenessState(repository, agentId, { status: 'alive', misses: 0, lastSeen: 1012, lastFailure: null });
    const rows = (await opened.database.knex('audit_records').where({ stream: agentId }).orderBy('seq')) as { actor: string; action: string; details: string }[];
    expect(rows.map((row) => [row.actor, row.action, JSON.parse(row.details) as unknown])).to.deep.equal([
      ['verifier:v1', 'liveness', { from: 'pending', to: 'alive', reason: null }],
      ['verifier:v1', 'liveness', { from: 'alive', to: 'unreachable', reason: 'no answer to 5 liveness checks in a row: refused' }],
      ['verifier:v1', 'liveness', { from: 'unreachable', to: 'alive', reason: null }],
    ]);
  });
});
