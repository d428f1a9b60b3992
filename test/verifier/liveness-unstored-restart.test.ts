import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { LivenessMonitor } from '../../lib/verifier/liveness/liveness-monitor.js';
import { LivenessRepository, type LivenessChange, type LivenessDecide } from '../../lib/verifier/liveness/liveness-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { seesEveryTenant } from '../helpers/liveness-state.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { startLivenessNode, type LivenessNode } from './helpers/liveness-node.js';

/** The database refuses every verdict while `down` (an outage that outlasts the process). */
class OutageRepository extends LivenessRepository {
  down = false;

  override async saveState(agentId: string, enrolment: string, decide: LivenessDecide): Promise<LivenessChange | undefined> {
    if (this.down) throw new Error('connection terminated (simulated database outage)');
    return super.saveState(agentId, enrolment, decide);
  }
}

/**
 * A wrong host-secret proof seen during a database outage, and the verifier closed before the database
 * came back: the `failed` verdict was only in memory, so the restarted verifier asked the node again,
 * the real host answered rightly, and the node came back alive. The failure is kept in the data folder
 * at close and stored first at the next start.
 */
describe('liveness monitor: a failure the database did not take before the verifier closed', function () {
  this.timeout(30_000);
  const agentId = 'impostor-before-restart';
  const proofKey = Buffer.alloc(32, 7);
  let node: LivenessNode;
  let opened: OpenedDatabase;
  let repository: OutageRepository;
  let dir: string;
  const silent = pino({ level: 'silent' });

  before(async function () {
    // The first answer is an impostor's (without the secret); the real host answers every later one.
    node = await startLivenessNode(agentId, () => (node.requests === 1 ? Buffer.alloc(32, 9) : proofKey));
    opened = await openMigratedTestSchema();
    repository = new OutageRepository(opened.database.knex);
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-liveness-restart-'));
  });

  after(async function () {
    await node?.close();
    await opened?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  function monitor(health: VerifierHealth): LivenessMonitor {
    const file = path.join(dir, 'liveness-unstored-failures.json');
    return new LivenessMonitor({ repository, verifierId: 'default', clientTls: { cert: node.tls.certPem, key: node.tls.keyPem }, intervalSeconds: 3600, timeoutMs: 2000, maxMisses: 1, health, log: silent, unstoredFailuresFile: file });
  }

  it('is stored by the next start before the node is asked again, and the node stays failed', async function () {
    await repository.enrol({ agentId, tenant: 'default', verifierId: 'default', mode: 'id-secret', trustLevel: 'id-secret', ip: '127.0.0.1', port: node.port, mtlsCert: node.tls.certPem, proofKey: proofKey.toString('hex') }, noAuditRecord, seesEveryTenant);
    repository.down = true;
    const first = monitor(new VerifierHealth());
    await first.checkNow();
    expect(node.requests).to.equal(1);
    await first.close();
    repository.down = false;
    expect((await repository.find(agentId))?.state.status, 'the outage kept the failure out of the database').to.equal('pending');

    const health = new VerifierHealth();
    const second = monitor(health);
    expect(health.problem(), 'not ready while the kept failure waits to be stored').to.not.equal(undefined);
    await second.checkNow();
    await second.checkNow();
    await second.close();
    const stored = await repository.find(agentId);
    expect(stored?.state.status).to.equal('failed');
    expect(stored?.state.lastFailure).to.include('host-secret proof does not match');
    expect(node.requests, 'the node was not asked again: its good answer cannot hide the failure').to.equal(1);
    expect(readdirSync(dir), 'stored: the kept list is gone').to.deep.equal([]);
  });

  it('refuses to start from a kept list it cannot read, rather than forget what it held', function () {
    writeFileSync(path.join(dir, 'liveness-unstored-failures.json'), '{"not": "a list"}');
    expect(() => monitor(new VerifierHealth())).to.throw(/not a list of unstored liveness failures/);
  });
});
