import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { LivenessMonitor } from '../../lib/verifier/liveness/liveness-monitor.js';
import { LivenessRepository } from '../../lib/verifier/liveness/liveness-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { seesEveryTenant } from '../helpers/liveness-state.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { startLivenessNode, type LivenessNode } from './helpers/liveness-node.js';

/**
 * A node whose wrong proof gave a `failed` verdict PostgreSQL refused for its values (and the failure
 * stored in its place too) is given up: not checked again by that process. The give-up lived in memory
 * only, so after a restart the node was checked afresh and, answering rightly by then, stored `alive`:
 * the lost failure turned into a PASS. It is now kept in the unstored failures list, stored (or given
 * up again) before the node is checked, so a restart never makes such a node alive.
 */
describe('liveness monitor: a node given up for a refused failure is not made alive by a restart (real PostgreSQL)', function () {
  this.timeout(30_000);
  const rightKey = Buffer.alloc(32, 7);
  let opened: OpenedDatabase;
  let knex: Knex;
  let repository: LivenessRepository;
  let dir: string;
  let node: LivenessNode | undefined;
  const log = pino({ level: 'silent' });

  before(async function () {
    opened = await openMigratedTestSchema();
    knex = opened.database.knex;
    repository = new LivenessRepository(knex);
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-liveness-given-up-'));
  });

  after(async function () {
    await node?.close();
    await opened?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a restart stores the failure again or gives it up again, and never asks the node or stores it alive', async function () {
    const agentId = 'given-up-then-restart';
    let key = Buffer.alloc(32, 9);
    const started = await startLivenessNode(agentId, () => key);
    node = started;
    await repository.enrol({ agentId, tenant: 'default', verifierId: 'default', mode: 'id-secret', trustLevel: 'id-secret', ip: '127.0.0.1', port: started.port, mtlsCert: started.tls.certPem, proofKey: rightKey.toString('hex') }, noAuditRecord, seesEveryTenant);
    // PostgreSQL refuses every failed state of this node (SQLSTATE 23514).
    await knex.raw(`alter table verifier_liveness add constraint refuse_given_up check (agent_id <> '${agentId}' or status <> 'failed') not valid`);
    const file = path.join(dir, 'liveness-unstored-failures.json');
    const monitorOf = (health: VerifierHealth): LivenessMonitor =>
      new LivenessMonitor({ repository, verifierId: 'default', clientTls: { cert: started.tls.certPem, key: started.tls.keyPem }, intervalSeconds: 3600, timeoutMs: 2000, maxMisses: 1, health, log, unstoredFailuresFile: file });

    const first = monitorOf(new VerifierHealth());
    await first.checkNow();
    expect(started.requests).to.equal(1);
    expect((await repository.find(agentId))?.state.status, 'the failure was refused').to.equal('pending');
    await first.close();

    // The node answers rightly from now on; the verifier restarts.
    key = rightKey;
    const health = new VerifierHealth();
    const second = monitorOf(health);
    try {
      await second.checkNow();
      await second.checkNow();
      expect(started.requests, 'not asked after the restart').to.equal(1);
      expect((await repository.find(agentId))?.state.status).to.not.equal('alive');
      expect(health.problem(), 'the failure given up again: ready').to.equal(undefined);
    } finally {
      await second.close();
    }

    // Once PostgreSQL takes it, the next start stores the failure that was kept.
    await knex.raw('alter table verifier_liveness drop constraint refuse_given_up');
    const third = monitorOf(new VerifierHealth());
    try {
      await third.checkNow();
      expect((await repository.find(agentId))?.state.status).to.equal('failed');
      expect(started.requests).to.equal(1);
    } finally {
      await third.close();
    }
  });
});
