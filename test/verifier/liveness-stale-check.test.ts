import { expect } from 'chai';
import { pino } from 'pino';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import { LivenessMonitor } from '../../lib/verifier/liveness/liveness-monitor.js';
import { LivenessRepository, type LivenessChange, type LivenessDecide, type LivenessRecord } from '../../lib/verifier/liveness/liveness-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { seesEveryTenant, storeLivenessState } from '../helpers/liveness-state.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { closedPort } from '../helpers/ports.js';
import { startLivenessNode, type LivenessNode } from './helpers/liveness-node.js';

/**
 * What this process read before its check may be stale by the time it stores the check's verdict:
 * another process of the verifier id stored a newer state, or an admin re-enrolled the node (`between`
 * runs after the read). A check never undoes a `failed`, never decides a re-enrolment it did not
 * check, and a sweep ends only once every check of it has (so sweeps never overlap).
 */
class RacedRepository extends LivenessRepository {
  between: (() => Promise<void>) | undefined;
  /** Nodes whose verdicts the database refuses. */
  readonly refused = new Set<string>();

  override async listFor(verifierId: string): Promise<LivenessRecord[]> {
    const records = await super.listFor(verifierId);
    await this.between?.();
    return records;
  }

  override async saveState(agentId: string, enrolment: string, decide: LivenessDecide): Promise<LivenessChange | undefined> {
    if (this.refused.has(agentId)) throw new Error('connection terminated (simulated database fault)');
    return super.saveState(agentId, enrolment, decide);
  }
}

describe('liveness monitor: a check decided from a stale read', function () {
  this.timeout(30_000);
  const proofKey = Buffer.alloc(32, 7);
  let opened: OpenedDatabase;
  let repository: RacedRepository;
  let node: LivenessNode;
  let slowNode: LivenessNode;
  const monitors: LivenessMonitor[] = [];

  before(async function () {
    opened = await openMigratedTestSchema();
    repository = new RacedRepository(opened.database.knex);
    node = await startLivenessNode('raced-node', () => proofKey);
    slowNode = await startLivenessNode('slow-node', () => proofKey, 1000);
  });

  after(async function () {
    for (const monitor of monitors) await monitor.close();
    await node?.close();
    await slowNode?.close();
    await opened?.dispose();
  });

  function monitorOf(verifierId: string): LivenessMonitor {
    const monitor = new LivenessMonitor({ repository, verifierId, clientTls: { cert: node.tls.certPem, key: node.tls.keyPem }, intervalSeconds: 3600, timeoutMs: 5000, maxMisses: 1, health: new VerifierHealth(), log: pino({ level: 'silent' }) });
    monitors.push(monitor);
    return monitor;
  }

  async function enrol(target: LivenessNode, verifierId: string, at: { port: number; cert: string } = { port: target.port, cert: target.tls.certPem }): Promise<void> {
    const refused = await repository.enrol({ agentId: target.agentId, tenant: 'default', verifierId, mode: 'id-secret', trustLevel: 'id-secret', ip: '127.0.0.1', port: at.port, mtlsCert: at.cert, proofKey: proofKey.toString('hex') }, noAuditRecord, seesEveryTenant);
    expect(refused).to.equal(undefined);
  }

  async function events(agentId: string): Promise<string[]> {
    const rows = (await opened.database.knex('verifier_liveness_events').select('from_status', 'to_status').where({ agent_id: agentId }).orderBy('id')) as { from_status: string; to_status: string }[];
    return rows.map((row) => `${row.from_status}->${row.to_status}`);
  }

  afterEach(async function () {
    repository.between = undefined;
    repository.refused.clear();
    await opened.database.knex('verifier_liveness').delete();
    await opened.database.knex('verifier_liveness_events').delete();
  });

  it('keeps the failed verdict another process stored after this one read the node', async function () {
    await enrol(node, 'failed-raced');
    repository.between = async () => {
      await storeLivenessState(repository, node.agentId, { status: 'failed', misses: 0, lastSeen: null, lastFailure: 'the host-secret proof does not match the nonce (other process)' });
    };
    await monitorOf('failed-raced').checkNow();
    const stored = await repository.find(node.agentId);
    expect(stored?.state.status, 'failed is final until re-enrolled').to.equal('failed');
    expect(stored?.state.lastFailure).to.include('other process');
    expect(await events(node.agentId)).to.deep.equal(['pending->failed']);
  });

  it('does not decide a re-enrolment (other address and certificate) from a check of the enrolment before it', async function () {
    await enrol(node, 're-enrolled');
    const elsewhere = { port: await closedPort(), cert: createSelfSignedServerCertificate({ commonName: 'elsewhere' }).certPem };
    repository.between = () => enrol(node, 're-enrolled', elsewhere);
    await monitorOf('re-enrolled').checkNow();
    const stored = await repository.find(node.agentId);
    expect(stored?.port).to.equal(elsewhere.port);
    expect(stored?.state, 'nothing was checked at the new address yet').to.deep.equal({ status: 'pending', misses: 0, lastSeen: null, lastFailure: null });
    expect(await events(node.agentId)).to.deep.equal([]);
  });

  it('ends a sweep only once every check of it has ended, even when storing one verdict failed', async function () {
    await enrol(node, 'two-nodes');
    await enrol(slowNode, 'two-nodes');
    repository.refused.add(node.agentId);
    await monitorOf('two-nodes').checkNow().catch(() => undefined);
    expect((await repository.find(slowNode.agentId))?.state.status, "the slow node's check was stored before the sweep ended").to.equal('alive');
  });
});
