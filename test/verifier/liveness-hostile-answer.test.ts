import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { pino } from 'pino';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import { LivenessMonitor } from '../../lib/verifier/liveness/liveness-monitor.js';
import { LivenessRepository } from '../../lib/verifier/liveness/liveness-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { seesEveryTenant } from '../helpers/liveness-state.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';

/**
 * A node's liveness answer is hostile input: fields that are JSON objects which cannot be turned into
 * text (`{"toString": 1}`) made the check throw while naming them, so no verdict was stored — the node
 * kept its last status instead of failing, and every sweep failed.
 */
describe('liveness monitor: an answer whose fields cannot be printed', function () {
  this.timeout(20_000);
  const tls = createSelfSignedServerCertificate({ commonName: 'hostile' });
  const answers = new Map<number, unknown>();
  let server: Server;
  let opened: OpenedDatabase;
  let repository: LivenessRepository;
  let monitor: LivenessMonitor;

  before(async function () {
    server = createServer({ cert: tls.certPem, key: tls.keyPem }, (request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ code: 200, status: 'Success', results: answers.get(request.socket.localPort ?? 0) }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    opened = await openMigratedTestSchema();
    repository = new LivenessRepository(opened.database.knex);
    monitor = new LivenessMonitor({ repository, verifierId: 'default', clientTls: { cert: tls.certPem, key: tls.keyPem }, intervalSeconds: 3600, timeoutMs: 2000, maxMisses: 3, health: new VerifierHealth(), log: pino({ level: 'silent' }) });
  });

  after(async function () {
    await monitor?.close();
    await new Promise((resolve) => server?.close(resolve));
    await opened?.dispose();
  });

  it('fails the node for an agent_uuid or identity_mode that is no text, and the sweep ends normally', async function () {
    const port = (server.address() as AddressInfo).port;
    answers.set(port, { agent_uuid: { toString: 1 }, identity_mode: 'id-only', proof: null });
    await repository.enrol({ agentId: 'hostile-uuid', tenant: 'default', verifierId: 'default', mode: 'id-only', trustLevel: 'id-only', ip: '127.0.0.1', port, mtlsCert: tls.certPem, proofKey: null }, noAuditRecord, seesEveryTenant);
    await monitor.checkNow();
    const uuid = await repository.find('hostile-uuid');
    expect(uuid?.state.status).to.equal('failed');
    expect(uuid?.state.lastFailure).to.include('names another agent');

    answers.set(port, { agent_uuid: 'hostile-mode', identity_mode: { toString: 1 }, proof: null });
    await repository.enrol({ agentId: 'hostile-mode', tenant: 'default', verifierId: 'default', mode: 'id-only', trustLevel: 'id-only', ip: '127.0.0.1', port, mtlsCert: tls.certPem, proofKey: null }, noAuditRecord, seesEveryTenant);
    await monitor.checkNow();
    const mode = await repository.find('hostile-mode');
    expect(mode?.state.status).to.equal('failed');
    expect(mode?.state.lastFailure).to.include('enrolled as id-only');
  });
});
