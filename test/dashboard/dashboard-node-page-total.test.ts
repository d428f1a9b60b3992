import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { dashboardPerSuite } from './dashboard-viewer.js';
import { insertFullFailedRounds } from './node-history.js';

const ROUNDS = 500;

/**
 * Each round's failures are bounded on the node page (20 contexts of 4,096 characters, 20 event ids),
 * but the page shows the node's last 500 rounds: a node that failed 500 rounds with the most it can
 * send (contexts of quotes, each `\"` in the JSON and `&quot;` in the HTML) made its page 186
 * million characters, read from the database and built in the verifier's memory at every view. The
 * page shows the newest entries' contexts and event ids up to a bound for the whole page, and says so.
 */
describe("dashboard: a node page is bounded as a whole, whatever its node's rounds held", function () {
  this.timeout(120_000);
  const dashboard = dashboardPerSuite('ironlime-dashboard-page-total-');

  before(async () => {
    const knex = dashboard.suite.database.database.knex;
    await seedVerifierAgents(knex, 1, 0);
    // Oldest first; each round 20 distinct event ids and 20 contexts of 4,000 quotes, its number `n` first.
    await insertFullFailedRounds(knex, ROUNDS, 'measured_boot.invalid_pcr_', '"');
  });

  it('500 failed rounds of 20 full contexts: the page stays under 1 MiB, shows the newest round whole and says the rest is left out', async () => {
    const page = await dashboard.get('/dashboard/nodes/agent-000001');
    expect(page.status).to.equal(200);
    expect(page.body.length, 'the node page').to.be.below(1024 * 1024);
    // The newest round shows its contexts and event ids; every round is still listed.
    expect(page.body).to.include(`{\\&quot;n\\&quot;: ${ROUNDS},`).and.include('measured_boot.invalid_pcr_19');
    expect(page.body.match(/<li class="entry-fail">/g) ?? []).to.have.length(ROUNDS);
    expect(page.body).to.match(/<p class="note">[^<]*contexts and event ids of \d+ older entries are not shown[^<]*<\/p>/);
    expect(page.body).to.not.include(`{\\&quot;n\\&quot;: ${ROUNDS - 1},`);
  });
});
