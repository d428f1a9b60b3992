import { expect } from 'chai';
import { chromium, type Browser } from 'playwright-core';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { viewerToken } from './dashboard-viewer.js';

const CHROMIUM = '/usr/bin/chromium';

/**
 * A page's live updates repaint the rows it shows (at most 50): a node that failed on another page of
 * the table, or outside its search, changed nothing on it, and the node table and node pages show no
 * counts. Every page's footer now counts the fleet's failing nodes and says how many more failed since
 * the page opened; a shown node deleted is shown as no longer enrolled rather than in its last colour.
 */
describe('dashboard in headless Chromium: a failure off the page is flagged in the footer, a deleted node is not left green', function () {
  this.timeout(60_000);
  const suite = verifierPerSuite('ironlime-dashboard-new-failures-');
  let browser: Browser;

  before(async () => {
    // 120 agents: the odd ids (60) are tenant default's, none of them failed.
    await seedVerifierAgents(suite.database.database.knex, 120, 0);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
  });

  it("the node table's first page, then an agent of its second page fails: the footer says +1", async () => {
    const token = await viewerToken(suite.dataDir);
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      await context.addCookies([{ name: '__Host-ironlime_token', value: token, url: suite.verifier.url }]);
      const page = await context.newPage();
      await page.goto(`${suite.verifier.url}/dashboard/nodes?sort=id&dir=asc&page=1`);
      expect(await page.locator('tr[data-agent]').count()).to.equal(50);
      expect(await page.locator('tr[data-agent="agent-000119"]').count(), 'on the second page').to.equal(0);
      await page.waitForSelector('#fleet-failing:not([hidden])', { timeout: 10_000 });
      expect(await page.textContent('#fleet-failing')).to.match(/failing in the fleet: 0$/);
      await suite.database.database.knex('verifier_agents').where({ agent_id: 'agent-000119' }).update({ operational_state: 9, updated_at: new Date() });
      // One tick (2 s at this verifier's interval) later.
      await page.waitForSelector('#fleet-failing.status-fail', { timeout: 10_000 });
      expect(await page.textContent('#fleet-failing')).to.include('failing in the fleet: 1 (+1 since this page opened');
      // Back to passing: the count says so, the flag stays until a reload.
      await suite.database.database.knex('verifier_agents').where({ agent_id: 'agent-000119' }).update({ operational_state: 3, updated_at: new Date() });
      await page.locator('#fleet-failing [data-count="failing"]').filter({ hasText: /^0$/ }).waitFor({ timeout: 10_000 });
      expect(await page.textContent('#fleet-failing')).to.include('failing in the fleet: 0 (+1 since this page opened');
      expect(await page.locator('#fleet-failing.status-fail').count()).to.equal(1);
    } finally {
      await context.close();
    }
  });

  it("a node's page, then the node is deleted: its status is no longer enrolled, no longer green", async () => {
    const token = await viewerToken(suite.dataDir);
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      await context.addCookies([{ name: '__Host-ironlime_token', value: token, url: suite.verifier.url }]);
      const page = await context.newPage();
      await page.goto(`${suite.verifier.url}/dashboard/nodes/agent-000021`);
      expect(await page.textContent('dd[data-field="status"]')).to.equal('PASS');
      await page.waitForSelector('#live[data-state="on"]', { timeout: 10_000 });
      await suite.database.database.knex('verifier_agents').where({ agent_id: 'agent-000021' }).delete();
      await page.waitForSelector('dl.node.status-pending', { timeout: 10_000 });
      expect(await page.textContent('dd[data-field="status"]')).to.equal('no longer enrolled (reload to refresh)');
    } finally {
      await context.close();
    }
  });
});
