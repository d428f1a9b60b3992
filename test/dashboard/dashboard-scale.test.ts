import { expect } from 'chai';
import { timeDashboardQueries, seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { DashboardQueries } from '../../lib/dashboard/dashboard-queries.js';
import { statusFreshnessBounds } from '../../lib/verifier/freshness-bounds.js';
import { VerifierConfig } from '../../lib/verifier/verifier-config.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';

describe('dashboard queries at 10,000 agents', function () {
  this.timeout(120_000);
  let opened: OpenedDatabase;
  let queries: DashboardQueries;

  before(async function () {
    opened = await openMigratedTestSchema();
    await seedVerifierAgents(opened.database.knex, 10_000, 5);
    // The seed's last successes are up to 10 minutes old: a bound of an hour keeps every PASS fresh.
    queries = new DashboardQueries(opened.database.knex, 11, statusFreshnessBounds({ ...new VerifierConfig(), staleAfter: 3600 }), () => Date.now() / 1000);
  });

  after(async function () {
    await opened?.dispose();
  });

  it('pages, sorts, searches and scopes by tenant on the server', async function () {
    const all = await queries.nodes(undefined, { search: '', sort: 'id', descending: false, page: 1 });
    expect(all.total).to.equal(10_000);
    expect(all.pages).to.equal(200);
    expect(all.rows.map((row) => row.agentId).slice(0, 2)).to.deep.equal(['agent-000001', 'agent-000002']);
    const last = await queries.nodes(undefined, { search: '', sort: 'id', descending: false, page: 9999 });
    expect(last.page).to.equal(200);
    expect(last.rows.at(-1)?.agentId).to.equal('agent-010000');
    const failed = await queries.nodes('default', { search: 'NOT_IN_allowlist', sort: 'state', descending: true, page: 1 });
    // Every 50th agent failed; the odd ones are tenant `default`: none of them is a multiple of 50.
    expect(failed.total).to.equal(0);
    const blueFailed = await queries.nodes('blue', { search: 'not_in_allowlist', sort: 'state', descending: true, page: 1 });
    expect(blueFailed.total).to.equal(200);
    expect(blueFailed.rows.every((row) => row.status === 'FAIL' && row.tenant === 'blue')).to.equal(true);
    const overview = await queries.overview('blue');
    expect(overview.total).to.equal(5000);
    expect(overview.byStatus).to.deep.equal({ PASS: 4800, FAIL: 200, PENDING: 0 });
    expect(overview.failuresLastHour).to.equal(200);
  });

  it('answers every page and the overview fast enough for a live view (median, loaded test machine)', async function () {
    const timed = await timeDashboardQueries(queries, 5);
    for (const { name, medianMs } of timed) {
      expect(medianMs, name).to.be.below(name.startsWith('overview') ? 400 : 250);
    }
  });
});
