import { expect } from 'chai';
import { pino } from 'pino';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import { LivenessMonitor } from '../../lib/verifier/liveness/liveness-monitor.js';
import { LivenessRepository } from '../../lib/verifier/liveness/liveness-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { seesEveryTenant, storeLivenessState } from '../helpers/liveness-state.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { closedPort } from '../helpers/ports.js';

/**
 * Every process of a verifier id checks every node and shares its stored last answer: a silence is
 * measured on the database's clock, so a process whose clock is behind (or the one that stored the
 * last answer ahead) does not keep a node that stopped answering `alive`.
 */
describe('liveness monitor: silences measured on the database clock', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let repository: LivenessRepository;
  let monitor: LivenessMonitor;
  const agentId = 'clock-node';
  const realNow = Date.now;

  before(async function () {
    opened = await openMigratedTestSchema();
    repository = new LivenessRepository(opened.database.knex);
    const tls = createSelfSignedServerCertificate({ commonName: agentId });
    // Nothing listens at the node's port: every check gets no answer.
    await repository.enrol({ agentId, tenant: 'default', verifierId: 'default', mode: 'id-only', trustLevel: 'id-only', ip: '127.0.0.1', port: await closedPort(), mtlsCert: tls.certPem, proofKey: null }, noAuditRecord, seesEveryTenant);
    monitor = new LivenessMonitor({ repository, verifierId: 'default', clientTls: { cert: tls.certPem, key: tls.keyPem }, intervalSeconds: 10, timeoutMs: 2000, maxMisses: 2, health: new VerifierHealth(), log: pino({ level: 'silent' }) });
  });

  after(async function () {
    Date.now = realNow;
    await monitor?.close();
    await opened?.dispose();
  });

  it('a node last answered an hour ago is unreachable after maxMisses misses, checked by a process whose clock is two hours behind', async function () {
    await storeLivenessState(repository, agentId, { status: 'alive', misses: 0, lastSeen: Math.floor(realNow() / 1000) - 3600, lastFailure: null });
    Date.now = () => realNow() - 2 * 3600 * 1000;
    try {
      await monitor.checkNow();
      await monitor.checkNow();
    } finally {
      Date.now = realNow;
    }
    const record = await repository.find(agentId);
    expect(record?.state).to.include({ status: 'unreachable', misses: 2 });
  });
});
