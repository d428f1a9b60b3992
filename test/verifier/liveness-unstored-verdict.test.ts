import { expect } from 'chai';
import { pino } from 'pino';
import { LivenessMonitor } from '../../lib/verifier/liveness/liveness-monitor.js';
import { LivenessRepository, type LivenessChange, type LivenessDecide } from '../../lib/verifier/liveness/liveness-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { seesEveryTenant } from '../helpers/liveness-state.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { startLivenessNode, type LivenessNode } from './helpers/liveness-node.js';

/** The database refuses the next `failures` verdicts (a fault), then takes them again. */
class FaultyRepository extends LivenessRepository {
  failures = 0;

  override async saveState(agentId: string, enrolment: string, decide: LivenessDecide): Promise<LivenessChange | undefined> {
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error('connection terminated (simulated database fault)');
    }
    return super.saveState(agentId, enrolment, decide);
  }
}

/**
 * A wrong host-secret proof seen while the database cannot store it: the `failed` verdict is kept,
 * logged at error with its reason, the verifier reads not ready, and it is stored before the node is
 * checked again, so the real host answering rightly afterwards does not make the node alive.
 */
describe('liveness monitor: a verdict the database did not take', function () {
  this.timeout(30_000);
  const agentId = 'impostor-seen-node';
  const proofKey = Buffer.alloc(32, 7);
  let node: LivenessNode;
  let opened: OpenedDatabase;
  let repository: FaultyRepository;
  let monitor: LivenessMonitor;
  const health = new VerifierHealth();
  const logged: Record<string, unknown>[] = [];

  before(async function () {
    // The first answer is an impostor's (without the secret); the real host answers every later one.
    node = await startLivenessNode(agentId, () => (node.requests === 1 ? Buffer.alloc(32, 9) : proofKey));
    opened = await openMigratedTestSchema();
    repository = new FaultyRepository(opened.database.knex);
    await repository.enrol({ agentId, tenant: 'default', verifierId: 'default', mode: 'id-secret', trustLevel: 'id-secret', ip: '127.0.0.1', port: node.port, mtlsCert: node.tls.certPem, proofKey: proofKey.toString('hex') }, noAuditRecord, seesEveryTenant);
    const log = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line) as Record<string, unknown>) });
    monitor = new LivenessMonitor({ repository, verifierId: 'default', clientTls: { cert: node.tls.certPem, key: node.tls.keyPem }, intervalSeconds: 3600, timeoutMs: 2000, maxMisses: 1, health, log });
  });

  after(async function () {
    await monitor?.close();
    await node?.close();
    await opened?.dispose();
  });

  it('keeps the failed verdict through the fault, then stores it instead of checking the node again', async function () {
    repository.failures = 2;
    await monitor.checkNow();
    expect(health.problem()).to.match(/^1 liveness verdict\(s\) not stored: connection terminated/);
    const errors = logged.filter((line) => line['level'] === 50);
    expect(errors).to.have.length(1);
    expect(errors[0]).to.include({ agentId, status: 'failed' });
    expect(errors[0]?.['reason']).to.include('host-secret proof does not match');
    // Still refused: kept again, and the node is not asked meanwhile.
    await monitor.checkNow();
    expect(node.requests).to.equal(1);
    expect(health.problem()).to.not.equal(undefined);
    expect(logged.filter((line) => line['level'] === 50), 'logged once, not at every retry of a long outage').to.have.length(1);
    await monitor.checkNow();
    expect(health.problem(), 'stored: ready again').to.equal(undefined);
    expect(node.requests, 'the kept verdict was stored instead of a new check').to.equal(1);
    expect((await repository.find(agentId))?.state.status).to.equal('failed');
    await monitor.checkNow();
    expect((await repository.find(agentId))?.state.status, 'a wrong proof is final until re-enrolled').to.equal('failed');
  });
});
