import { expect } from 'chai';
import { DashboardQueries } from '../../lib/dashboard/dashboard-queries.js';
import { statusFreshnessBounds } from '../../lib/verifier/freshness-bounds.js';
import { LivenessRepository } from '../../lib/verifier/liveness/liveness-repository.js';
import { VerifierConfig } from '../../lib/verifier/verifier-config.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { seesEveryTenant, storeLivenessState } from '../helpers/liveness-state.js';
import { timedHttpsCall } from '../helpers/timed-https-call.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { viewerToken } from './dashboard-viewer.js';

const CERT = '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n';

/**
 * A liveness node's last answer is dated on the database's clock (liveness-monitor.ts). The dashboard
 * judged it on the verifier process's clock: a process behind the database showed a node silent for
 * longer than the bound as alive, where the status API (judging on the database's clock) says pending.
 */
describe('dashboard: a liveness node judged on the clock its last answer was dated with', function () {
  this.timeout(60_000);
  const behindSeconds = 60;
  const realNow = Date.now;
  const suite = verifierPerSuite('ironlime-dashboard-liveness-clock-');

  after(() => {
    Date.now = realNow;
  });

  it('a node silent for longer than the bound is pending on its page, in the table and in the overview, on a process clock behind the database', async () => {
    const knex = suite.database.database.knex;
    const liveness = new LivenessRepository(knex);
    await liveness.enrol({ verifierId: 'elsewhere', ip: '127.0.0.1', port: 9, mtlsCert: CERT, agentId: 'silent-node', tenant: 'default', mode: 'id-only', trustLevel: 'id-only', proofKey: null }, noAuditRecord, seesEveryTenant);
    const databaseNow = Math.floor(Number(((await knex.raw('select extract(epoch from now())::float8 as now')) as { rows: { now: number }[] }).rows[0]?.now));
    Date.now = () => realNow() - behindSeconds * 1000;
    try {
      const token = await viewerToken(suite.dataDir);
      const get = (path: string, headers: Record<string, string>) => timedHttpsCall(suite.verifier.url, suite.verifier.caCert, 'GET', path, headers);
      const page = (path: string) => get(path, { cookie: `__Host-ironlime_token=${token}` });
      const bound = Number(JSON.parse((await get('/v2.3/liveness/silent-node', { authorization: `Bearer ${token}` })).body).results.freshness_bound);
      await storeLivenessState(liveness, 'silent-node', { status: 'alive', misses: 0, lastSeen: databaseNow - bound - 30, lastFailure: null });

      const api = JSON.parse((await get('/v2.3/liveness/silent-node', { authorization: `Bearer ${token}` })).body).results;
      expect(api).to.include({ liveness_status: 'pending', stale: true });
      const node = await page('/dashboard/nodes/silent-node');
      expect(node.body, 'the node page').to.include('<dl class="node status-pending"');
      const table = await page('/dashboard/nodes');
      expect(table.body, 'the table').to.match(/<tr data-agent="silent-node" class="status-pending">/);
      const overview = await page('/dashboard');
      expect(overview.body, 'the overview').to.include('data-count="liveness-id-only-alive">0<').and.include('data-count="liveness-id-only-pending">1<');
    } finally {
      Date.now = realNow;
    }
  });

  it('shows the same last answer at every read, so the live updates send a liveness row only when it changed', async () => {
    const knex = suite.database.database.knex;
    const liveness = new LivenessRepository(knex);
    await liveness.enrol({ verifierId: 'elsewhere', ip: '127.0.0.1', port: 9, mtlsCert: CERT, agentId: 'steady-node', tenant: 'default', mode: 'id-only', trustLevel: 'id-only', proofKey: null }, noAuditRecord, seesEveryTenant);
    await storeLivenessState(liveness, 'steady-node', { status: 'alive', misses: 0, lastSeen: Math.floor(Date.now() / 1000), lastFailure: null });
    const queries = new DashboardQueries(knex, 11, statusFreshnessBounds(new VerifierConfig()), () => Date.now() / 1000);
    // What dashboard-events.ts compares from one tick to the next: the row as JSON.
    const reads = new Set<string>();
    for (let read = 0; read < 5; read += 1) {
      for (const row of await queries.nodesByIds(undefined, ['steady-node'])) reads.add(JSON.stringify(row));
    }
    expect([...reads], 'the row changed between reads though nothing was written').to.have.length(1);
  });
});
