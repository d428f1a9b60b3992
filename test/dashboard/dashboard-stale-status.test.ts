import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { LivenessRepository } from '../../lib/verifier/liveness/liveness-repository.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { seesEveryTenant, storeLivenessState } from '../helpers/liveness-state.js';
import { readDashboardEvents, sentRows } from '../helpers/read-dashboard-events.js';
import { timedHttpsCall } from '../helpers/timed-https-call.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { viewerToken } from './dashboard-viewer.js';

const CERT = '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n';
const DAY = 86_400;

/**
 * The status API never shows a PASS older than its freshness bound, nor an `alive` older than the
 * liveness bound (operatorStatus, livenessOperatorStatus): the dashboard shows the same, from the same
 * bounds — the node page, the table, the overview's counts and the live updates.
 */
describe('dashboard: a stale PASS or alive shows as pending, as the status API says', function () {
  this.timeout(60_000);
  const suite = verifierPerSuite('ironlime-dashboard-stale-');
  let token: string;

  before(async () => {
    const knex = suite.database.database.knex;
    // agent-000001 of tenant default, in Get Quote (a PASS state), its last success a day ago (its PCR 10 one the status API reads).
    await seedVerifierAgents(knex, 1, 1);
    await knex('verifier_agents')
      .update({ last_successful_attestation: knex.raw("now() - interval '1 day'"), last_attempt_at: knex.raw("now() - interval '1 day'"), ima_pcr10: JSON.stringify({ sha256: '0'.repeat(64) }) })
      .where({ agent_id: 'agent-000001' });
    const liveness = new LivenessRepository(knex);
    await liveness.enrol({ verifierId: 'elsewhere', ip: '127.0.0.1', port: 9, mtlsCert: CERT, agentId: 'live-secret', tenant: 'default', mode: 'id-secret', trustLevel: 'id-secret', proofKey: 'ab'.repeat(32) }, noAuditRecord, seesEveryTenant);
    await storeLivenessState(liveness, 'live-secret', { status: 'alive', misses: 0, lastSeen: Math.floor(Date.now() / 1000) - DAY, lastFailure: null });
    token = await viewerToken(suite.dataDir);
  });

  const get = (path: string, headers: Record<string, string>) => timedHttpsCall(suite.verifier.url, suite.verifier.caCert, 'GET', path, headers);
  const page = (path: string) => get(path, { cookie: `__Host-ironlime_token=${token}` });

  it('the API says PENDING and stale: the node page, the table and the overview say so too (they said PASS in green)', async () => {
    const api = JSON.parse((await get('/v2.3/agents/agent-000001', { authorization: `Bearer ${token}` })).body).results;
    expect(api).to.include({ operational_state: 3, attestation_status: 'PENDING', trusted: false, stale: true });

    const node = await page('/dashboard/nodes/agent-000001');
    expect(node.status).to.equal(200);
    expect(node.body).to.include('<dl class="node status-pending"').and.match(/data-field="status">PENDING \(stale: no successful attestation within \d+ s\)</);
    expect(node.body).to.not.include('status-pass');

    const table = await page('/dashboard/nodes');
    expect(table.body).to.match(/<tr data-agent="agent-000001" class="status-pending">/);
    // Its state cell says why, not only its colour (it said "Get Quote").
    expect(table.body).to.match(/<td data-field="state">Get Quote — PENDING \(stale: no successful attestation within \d+ s\)<\/td>/);

    const overview = await page('/dashboard');
    expect(overview.body).to.include('data-count="PASS">0<').and.include('data-count="PENDING">1<').and.include('data-count="stale">1<');
  });

  it('an alive node whose last answer is a day old is pending on its page and in the overview, as the liveness API says', async () => {
    const api = JSON.parse((await get('/v2.3/liveness/live-secret', { authorization: `Bearer ${token}` })).body).results;
    expect(api).to.include({ liveness_status: 'pending', stale: true });

    const node = await page('/dashboard/nodes/live-secret');
    expect(node.body).to.include('<dl class="node status-pending"').and.match(/data-field="status">PENDING \(stale: no liveness answer within \d+ s\)</);
    expect(node.body).to.not.include('status-live');

    const table = await page('/dashboard/nodes?q=live-secret');
    expect(table.body).to.match(/<td data-field="state">liveness check: pending, no integrity evidence — PENDING \(stale: no liveness answer within \d+ s\)<\/td>/);

    const overview = await page('/dashboard');
    expect(overview.body).to.include('data-count="liveness-id-secret-alive">0<').and.include('data-count="liveness-id-secret-pending">1<');
  });

  it('live updates send a row whose PASS goes stale, though going stale writes nothing to its row', async () => {
    const knex = suite.database.database.knex;
    const api = JSON.parse((await get('/v2.3/agents/agent-000001', { authorization: `Bearer ${token}` })).body).results;
    const bound = Number(api.freshness_bound);
    // Fresh for about one more second (the bound plus its one second of slack), then stale; the row was last written an hour ago.
    const lastSuccess = Math.ceil(Date.now() / 1000) - bound;
    await knex('verifier_agents')
      .update({ last_successful_attestation: new Date(lastSuccess * 1000), updated_at: knex.raw("now() - interval '1 hour'") })
      .where({ agent_id: 'agent-000001' });
    const text = await readDashboardEvents(suite.verifier.url, suite.verifier.caCert, '/dashboard/events?agent=agent-000001', token, 5000);
    const sent = sentRows(text).filter((row) => row.agentId === 'agent-000001');
    expect(sent, text.slice(0, 400)).to.have.length.above(0);
    expect(sent[sent.length - 1]).to.deep.include({ tone: 'pending' });
    expect(sent[sent.length - 1]?.status).to.match(/^PENDING \(stale/);
    expect(sent[sent.length - 1]?.tableState).to.match(/^Get Quote — PENDING \(stale/);
  });
});
