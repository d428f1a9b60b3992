import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
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

/** The database refuses this process's verdicts while `down` (its connection cut, say). */
class OutageRepository extends LivenessRepository {
  down = false;

  override async saveState(agentId: string, enrolment: string, decide: LivenessDecide): Promise<LivenessChange | undefined> {
    if (this.down) throw new Error('connection terminated (simulated database outage)');
    return super.saveState(agentId, enrolment, decide);
  }
}

/**
 * Two verifier processes on one data folder (docs/verifier.md: the folder's CA and certificates are
 * shared). Each kept the failures the database refused in the one `liveness-unstored-failures.json`,
 * written whole from its own memory: the second overwrote the first's list (or removed it once its own
 * were stored), and the first, then killed, lost an impostor's failure. Each process now keeps its own
 * list, and a start takes over every list in the folder.
 */
describe('liveness monitor: two processes keeping refused failures in one data folder', function () {
  this.timeout(60_000);
  const proofKey = Buffer.alloc(32, 7);
  const silent = pino({ level: 'silent' });
  let nodes: Record<'a' | 'b', LivenessNode>;
  let opened: OpenedDatabase;
  let dir: string;

  before(async function () {
    // Each node's first answer is an impostor's (without the secret); the real host answers every later one.
    const impostorFirst = (id: 'a' | 'b'): Promise<LivenessNode> => startLivenessNode(`node-${id}`, () => (nodes[id].requests === 1 ? Buffer.alloc(32, 9) : proofKey));
    nodes = { a: await impostorFirst('a'), b: await impostorFirst('b') };
    opened = await openMigratedTestSchema();
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-liveness-shared-'));
    const repository = new LivenessRepository(opened.database.knex);
    for (const id of ['a', 'b'] as const) {
      const node = nodes[id];
      await repository.enrol({ agentId: `node-${id}`, tenant: 'default', verifierId: id, mode: 'id-secret', trustLevel: 'id-secret', ip: '127.0.0.1', port: node.port, mtlsCert: node.tls.certPem, proofKey: proofKey.toString('hex') }, noAuditRecord, seesEveryTenant);
    }
  });

  after(async function () {
    await nodes?.a.close();
    await nodes?.b.close();
    await opened?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  function monitor(verifierId: 'a' | 'b', repository: LivenessRepository): LivenessMonitor {
    const node = nodes[verifierId];
    return new LivenessMonitor({ repository, verifierId, clientTls: { cert: node.tls.certPem, key: node.tls.keyPem }, intervalSeconds: 3600, timeoutMs: 2000, maxMisses: 1, health: new VerifierHealth(), log: silent, unstoredFailuresFile: path.join(dir, 'liveness-unstored-failures.json') });
  }

  it('a failure one process kept survives the other storing its own, then the first being killed', async function () {
    const cutA = new OutageRepository(opened.database.knex);
    const cutB = new OutageRepository(opened.database.knex);
    cutA.down = true;
    cutB.down = true;
    const first = monitor('a', cutA);
    const second = monitor('b', cutB);
    await first.checkNow();
    await second.checkNow();
    // The second process's database comes back: its own failure is stored, its list emptied.
    cutB.down = false;
    await second.checkNow();
    await second.close();
    // The first process is killed (never closed); a new one starts on the folder.
    const restarted = monitor('a', new LivenessRepository(opened.database.knex));
    await restarted.checkNow();
    await restarted.close();
    const repository = new LivenessRepository(opened.database.knex);
    expect((await repository.find('node-b'))?.state.status).to.equal('failed');
    const stored = await repository.find('node-a');
    expect(stored?.state.status, 'the impostor the killed process saw stays failed').to.equal('failed');
    expect(stored?.state.lastFailure).to.include('host-secret proof does not match');
    expect(nodes.a.requests, 'node a was not asked again: its good answer cannot hide the failure').to.equal(1);
    expect(readdirSync(dir).filter((name) => name.startsWith('liveness-unstored-failures')), 'every kept list gone once stored').to.deep.equal([]);
  });
});
