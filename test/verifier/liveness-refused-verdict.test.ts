import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { LivenessMonitor } from '../../lib/verifier/liveness/liveness-monitor.js';
import { LivenessRepository, type LivenessChange, type LivenessDecide } from '../../lib/verifier/liveness/liveness-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { seesEveryTenant } from '../helpers/liveness-state.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { startLivenessNode, type LivenessNode } from './helpers/liveness-node.js';

/** Counts the stores tried. */
class CountingRepository extends LivenessRepository {
  saves = 0;

  override saveState(agentId: string, enrolment: string, decide: LivenessDecide): Promise<LivenessChange | undefined> {
    this.saves += 1;
    return super.saveState(agentId, enrolment, decide);
  }
}

/**
 * A liveness verdict PostgreSQL refuses for its values (a CHECK constraint the test adds on one node's
 * row: SQLSTATE 23514) was kept and stored again at every sweep, so `/health` stayed 503 for good, and
 * a refused `failed` verdict stayed in the unstored failures file across every restart. It is now
 * tried once more, then given up: `failed` with `internal.verifier.exception` is stored in its place,
 * and when that is refused too nothing is stored and the node is not checked again by this process
 * (nor after a restart: test/verifier/liveness-given-up-restart.test.ts).
 */
describe('liveness monitor: a verdict the database refuses for its values is given up and the node fails closed (real PostgreSQL)', function () {
  this.timeout(30_000);
  const proofKey = Buffer.alloc(32, 7);
  let opened: OpenedDatabase;
  let knex: Knex;
  let repository: CountingRepository;
  let dir: string;
  const nodes: LivenessNode[] = [];
  const monitors: LivenessMonitor[] = [];
  const logged: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line) as Record<string, unknown>) });

  before(async function () {
    opened = await openMigratedTestSchema();
    knex = opened.database.knex;
    repository = new CountingRepository(knex);
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-liveness-refused-'));
  });

  after(async function () {
    for (const monitor of monitors) await monitor.close();
    for (const node of nodes) await node.close();
    await opened?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** A node that answers rightly, enrolled, whose row PostgreSQL then refuses when `refused` holds of it (SQL over the new row). */
  async function enrolledNode(agentId: string, refused: string): Promise<LivenessNode> {
    const node = await startLivenessNode(agentId, () => proofKey);
    nodes.push(node);
    await repository.enrol({ agentId, tenant: 'default', verifierId: 'default', mode: 'id-secret', trustLevel: 'id-secret', ip: '127.0.0.1', port: node.port, mtlsCert: node.tls.certPem, proofKey: proofKey.toString('hex') }, noAuditRecord, seesEveryTenant);
    await knex.raw(`alter table verifier_liveness add constraint refuse_${agentId.replace(/-/g, '_')} check (agent_id <> '${agentId}' or not (${refused})) not valid`);
    return node;
  }

  function monitorFor(node: LivenessNode, health: VerifierHealth, unstoredFailuresFile?: string): LivenessMonitor {
    const monitor = new LivenessMonitor({ repository, verifierId: 'default', clientTls: { cert: node.tls.certPem, key: node.tls.keyPem }, intervalSeconds: 3600, timeoutMs: 2000, maxMisses: 1, health, log, unstoredFailuresFile });
    monitors.push(monitor);
    return monitor;
  }

  async function status(agentId: string): Promise<{ status: string | undefined; lastFailure: string | null | undefined }> {
    const record = await repository.find(agentId);
    return { status: record?.state.status, lastFailure: record?.state.lastFailure };
  }

  beforeEach(function () {
    repository.saves = 0;
    logged.length = 0;
  });

  it('an alive verdict refused twice is given up and the node is failed in its place; /health ready', async function () {
    const node = await enrolledNode('refused-alive', "status = 'alive'");
    const health = new VerifierHealth();
    const monitor = monitorFor(node, health);
    await monitor.checkNow();
    expect(health.problem()).to.equal(undefined);
    // The verdict twice, then the failure in its place.
    expect(repository.saves).to.equal(3);
    const stored = await status('refused-alive');
    expect(stored.status).to.equal('failed');
    expect(stored.lastFailure).to.equal("internal.verifier.exception: the check's verdict could not be stored: the database refused its values (SQLSTATE 23514)");
    expect(logged.filter((line) => line['level'] === 50).map((line) => line['msg'])).to.deep.equal(['the database refused the liveness verdict for its values twice: not tried again, the node failed in its place']);
    await monitor.checkNow();
    expect(node.requests, 'failed: not asked again').to.equal(1);
  });

  it('when the failure in its place is refused too, nothing is stored, /health is ready, and the node is not checked again here', async function () {
    const node = await enrolledNode('refused-every-update', "status <> 'pending'");
    const health = new VerifierHealth();
    const monitor = monitorFor(node, health);
    await monitor.checkNow();
    expect(health.problem()).to.equal(undefined);
    expect(repository.saves).to.equal(4);
    expect(await status('refused-every-update')).to.deep.equal({ status: 'pending', lastFailure: null });
    expect(logged.filter((line) => line['level'] === 50)).to.have.length(2);
    await monitor.checkNow();
    expect(node.requests, 'a later good answer cannot make it alive here').to.equal(1);
    expect(repository.saves).to.equal(4);
    expect(health.problem()).to.equal(undefined);
    // A re-enrolment (a fresh enrolment uuid) is checked again.
    await repository.enrol({ agentId: 'refused-every-update', tenant: 'default', verifierId: 'default', mode: 'id-secret', trustLevel: 'id-secret', ip: '127.0.0.1', port: node.port, mtlsCert: node.tls.certPem, proofKey: proofKey.toString('hex') }, noAuditRecord, seesEveryTenant);
    await monitor.checkNow();
    expect(node.requests).to.equal(2);
    expect(repository.saves).to.equal(8);
    expect(health.problem()).to.equal(undefined);
  });

  it('a kept failure from the last run that is refused is given up too: /health ready, the node not asked, the failure kept for the next start', async function () {
    const node = await enrolledNode('refused-kept-failure', "status = 'failed'");
    const file = path.join(dir, 'liveness-unstored-failures.json');
    writeFileSync(file, JSON.stringify([{ agentId: 'refused-kept-failure', enrolment: (await repository.find('refused-kept-failure'))?.enrolment, reason: 'host-secret proof does not match' }]));
    const health = new VerifierHealth();
    const monitor = monitorFor(node, health, file);
    expect(health.problem(), 'not ready while the kept failure waits').to.not.equal(undefined);
    await monitor.checkNow();
    expect(health.problem()).to.equal(undefined);
    expect(node.requests, 'its failure was lost: a good answer must not make it alive').to.equal(0);
    expect((await status('refused-kept-failure')).status).to.equal('pending');
    await monitor.close();
    // Given up, the failure in its place is still kept: the next start stores it or gives it up again, never checks the node first.
    const lists = readdirSync(dir);
    expect(lists).to.have.length(1);
    const kept = (JSON.parse(readFileSync(path.join(dir, lists[0] as string), 'utf8')) as { agentId: string }[]).filter((failure) => failure.agentId === 'refused-kept-failure');
    expect(kept).to.deep.equal([
      { agentId: 'refused-kept-failure', enrolment: (await repository.find('refused-kept-failure'))?.enrolment, reason: "internal.verifier.exception: the check's verdict could not be stored: the database refused its values (SQLSTATE 23514)" },
    ]);
  });
});
