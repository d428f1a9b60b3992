import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { pino } from 'pino';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import { LivenessMonitor } from '../../lib/verifier/liveness/liveness-monitor.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { LivenessRepository } from '../../lib/verifier/liveness/liveness-repository.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { seesEveryTenant } from '../helpers/liveness-state.js';

/**
 * A node that starts its liveness answer and then sends one byte every 100 ms, for ever: the socket is
 * never idle long enough for an idle timeout, so only a whole-exchange deadline ends the check.
 */
describe('liveness monitor: a node dripping its answer', function () {
  this.timeout(20_000);
  const agentId = 'dripping-node';
  const tls = createSelfSignedServerCertificate({ commonName: agentId });
  const drips = new Set<NodeJS.Timeout>();
  let server: Server;
  let opened: OpenedDatabase;
  let repository: LivenessRepository;
  let monitor: LivenessMonitor;

  before(async function () {
    server = createServer({ cert: tls.certPem, key: tls.keyPem }, (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{');
      const drip = setInterval(() => response.write(' '), 100);
      drips.add(drip);
      response.on('close', () => {
        clearInterval(drip);
        drips.delete(drip);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    opened = await openMigratedTestSchema();
    repository = new LivenessRepository(opened.database.knex);
    const port = (server.address() as AddressInfo).port;
    await repository.enrol({ agentId, tenant: 'default', verifierId: 'default', mode: 'id-only', trustLevel: 'id-only', ip: '127.0.0.1', port, mtlsCert: tls.certPem, proofKey: null }, noAuditRecord, seesEveryTenant);
    monitor = new LivenessMonitor({ repository, verifierId: 'default', clientTls: { cert: tls.certPem, key: tls.keyPem }, intervalSeconds: 3600, timeoutMs: 500, maxMisses: 1, health: new VerifierHealth(), log: pino({ level: 'silent' }) });
  });

  after(async function () {
    await monitor?.close();
    for (const drip of drips) clearInterval(drip);
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await opened?.dispose();
  });

  it('gives up at the deadline and counts a miss, so the next sweeps are not held', async function () {
    const started = Date.now();
    const sweep = monitor.checkNow();
    // The drip never ends; 15 s leaves room for a CI host that stalls this process past the 500 ms deadline.
    const ended = await Promise.race([sweep.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 15_000))]);
    expect(ended, 'the sweep ended').to.equal(true);
    expect(Date.now() - started).to.be.at.least(450);
    const record = await repository.find(agentId);
    expect(record?.state.status).to.equal('unreachable');
    expect(record?.state.lastFailure).to.contain('no complete answer within 500 ms');
  });
});
