import { expect } from 'chai';
import { pino } from 'pino';
import type { LivenessState } from '../../lib/attestation/liveness-decision.js';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import { LivenessMonitor } from '../../lib/verifier/liveness/liveness-monitor.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { LivenessRepository, type LivenessRecord } from '../../lib/verifier/liveness/liveness-repository.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { seesEveryTenant } from '../helpers/liveness-state.js';
import { closedPort } from '../helpers/ports.js';

/**
 * Another process of the same verifier id stores a state between this process's read of the node
 * and its own update (`raced`): the monitor must log what its update changed, not the difference
 * from the state it read.
 */
class RacedRepository extends LivenessRepository {
  raced: LivenessState | undefined;

  override async listFor(verifierId: string): Promise<LivenessRecord[]> {
    const records = await super.listFor(verifierId);
    const raced = this.raced;
    for (const record of records) {
      if (raced !== undefined) await super.saveState(record.agentId, record.enrolment, () => raced);
    }
    return records;
  }
}

describe('liveness monitor: status changes logged from the stored update', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let repository: RacedRepository;
  let monitor: LivenessMonitor;
  let logged: Record<string, unknown>[];
  const agentId = 'racing-node';

  before(async function () {
    opened = await openMigratedTestSchema();
    repository = new RacedRepository(opened.database.knex);
    const tls = createSelfSignedServerCertificate({ commonName: agentId });
    // Nothing listens at the node's port: every check gets no answer.
    await repository.enrol({ agentId, tenant: 'default', verifierId: 'default', mode: 'id-only', trustLevel: 'id-only', ip: '127.0.0.1', port: await closedPort(), mtlsCert: tls.certPem, proofKey: null }, noAuditRecord, seesEveryTenant);
    const log = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line) as Record<string, unknown>) });
    monitor = new LivenessMonitor({ repository, verifierId: 'default', clientTls: { cert: tls.certPem, key: tls.keyPem }, intervalSeconds: 3600, timeoutMs: 2000, maxMisses: 1, health: new VerifierHealth(), log });
  });

  beforeEach(function () {
    logged = [];
  });

  after(async function () {
    await monitor?.close();
    await opened?.dispose();
  });

  async function changes(): Promise<{ from_status: string; to_status: string }[]> {
    return opened.database.knex('verifier_liveness_events').select('from_status', 'to_status').where({ agent_id: agentId }).orderBy('id');
  }

  it('logs no change when another process stored the same status first', async function () {
    repository.raced = { status: 'unreachable', misses: 1, lastSeen: null, lastFailure: 'no answer from the other process' };
    await monitor.checkNow();
    expect(logged.filter((line) => line['msg'] === 'liveness status changed')).to.deep.equal([]);
    expect(await changes()).to.deep.equal([{ from_status: 'pending', to_status: 'unreachable' }]);
  });

  it('logs the change its update made from a status it did not read', async function () {
    const earlier = (await changes()).length;
    repository.raced = { status: 'alive', misses: 0, lastSeen: Math.floor(Date.now() / 1000), lastFailure: null };
    await monitor.checkNow();
    const lines = logged.filter((line) => line['msg'] === 'liveness status changed');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ agentId, from: 'alive', status: 'unreachable' });
    const made = (await changes()).slice(earlier);
    expect(made.map((change) => change.to_status), 'the other process stored alive, this one unreachable').to.deep.equal(['alive', 'unreachable']);
    expect(made[1]).to.deep.equal({ from_status: 'alive', to_status: 'unreachable' });
  });
});
