import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { startTestFleet, type TestFleet } from './fleet-fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.join(REPO_ROOT, 'test-output');
const NOT_IN_ALLOWLIST = 'ima.validation.ima-ng.not_in_allowlist';
const QUOTE_INTERVAL = 1;
/** A node without a TPM enrolled for liveness checks beside the three attested agents. */
const NO_TPM_NODE = 'no-tpm-node';

/** Logs `context` in through the dashboard's login form with `token`, as a person would. */
async function logIn(context: BrowserContext, baseUrl: string, token: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${baseUrl}/dashboard`);
  expect(new URL(page.url()).pathname).to.equal('/dashboard/login');
  await page.fill('textarea[name=token]', token);
  await Promise.all([page.waitForURL(`${baseUrl}/dashboard`), page.click('button[type=submit]')]);
  return page;
}

async function count(page: Page, key: string): Promise<string> {
  return (await page.textContent(`[data-count="${key}"]`)) ?? '';
}

describe('dashboard in headless Chromium', function () {
  this.timeout(180_000);
  let fleet: TestFleet;
  let browser: Browser;
  let baseUrl: string;

  before(async function () {
    mkdirSync(SCREENSHOTS, { recursive: true });
    fleet = await startTestFleet(3, QUOTE_INTERVAL);
    baseUrl = fleet.fleet.verifierUrl;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    // Nothing answers at this address: the node stays pending, then unreachable; never passing.
    const enrolled = await fleet.call('POST', `/v2.3/liveness/${NO_TPM_NODE}`, { authorization: `Bearer ${await fleet.token('operator', 'default')}` }, {
      identity_mode: 'id-only',
      ip: '192.0.2.1',
      port: 9,
      mtls_cert: fleet.caCert,
    });
    expect(enrolled.status, enrolled.body).to.equal(200);
  });

  after(async function () {
    await browser?.close();
    await fleet?.close();
  });

  /** The overview as a viewer of `tenant`, once its live updates are connected. */
  async function liveOverview(context: BrowserContext, tenant: string): Promise<Page> {
    const page = await logIn(context, baseUrl, await fleet.token('viewer', tenant));
    await page.waitForSelector('#live[data-state="on"]');
    return page;
  }

  it('shows the right counts, turns a tampered agent red without reload, names its failing event id, and lists the policies', async function () {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 800 } });
    try {
      const page = await liveOverview(context, 'default');
      expect(await count(page, 'total')).to.equal('3');
      expect(await count(page, 'PASS')).to.equal('3');
      expect(await count(page, 'FAIL')).to.equal('0');
      expect(await count(page, `state-${OperationalState.GET_QUOTE}`)).to.equal('3');
      // The fleet's enrolments carry no trust level; the node without a TPM is id-only and liveness-checked, counted apart.
      expect(await count(page, 'trust-unknown')).to.equal('3');
      expect(await count(page, 'trust-id-only')).to.equal('0');
      expect(await count(page, 'trust-hardware-tpm')).to.equal('0');
      expect(Number(await count(page, 'liveness-id-only-pending')) + Number(await count(page, 'liveness-id-only-unreachable'))).to.equal(1);
      expect(await count(page, 'liveness-id-secret-pending')).to.equal('0');
      await page.waitForFunction('Number(document.querySelector(\'[data-count="perMinute"]\').textContent) > 0');

      await page.goto(`${baseUrl}/dashboard/nodes`);
      expect(await page.locator('table.nodes tbody tr').count()).to.equal(4);
      const noTpm = page.locator(`tr[data-agent="${NO_TPM_NODE}"]`);
      expect(await noTpm.locator('[data-field="trust"]').textContent()).to.equal('id-only');
      expect(await noTpm.locator('[data-field="state"]').textContent()).to.match(/^liveness check: (pending|unreachable), no integrity evidence$/);
      expect(await noTpm.getAttribute('class')).to.not.equal('status-pass');
      expect(await page.locator(`tr[data-agent="${fleet.fleet.agents[1]?.uuid}"] [data-field="trust"]`).textContent()).to.equal('unknown');
      await page.waitForSelector('#live[data-state="on"]');
      // A mark on this document: it is gone if anything reloads the page.
      await page.evaluate('window.notReloaded = true');
      const victim = fleet.fleet.agents[0];
      if (victim === undefined) throw new Error('no agents');
      // The page notes when the row turns red: on a slow host, noticing it from here (and the query
      // below) takes a while of its own, which the bound is not about.
      await page.evaluate(`(() => {
        const red = () => document.querySelector('tr[data-agent="${victim.uuid}"].status-fail') !== null;
        const observer = new MutationObserver(() => {
          if (red()) { window.redAt = Date.now(); observer.disconnect(); }
        });
        observer.observe(document.body, { subtree: true, childList: true, attributes: true });
      })()`);
      const tamperedAt = await victim.tamper();
      const row = page.locator(`tr[data-agent="${victim.uuid}"]`);
      await row.and(page.locator('.status-fail')).waitFor({ timeout: 10_000 });
      const redAt = Number(await page.evaluate('window.redAt'));
      const redAfterMs = redAt - tamperedAt;
      const failedAt = await fleet.admin
        .withSchema(fleet.schema)
        .table('verifier_attestation_history')
        .where({ agent_id: victim.uuid, outcome: 'fail' })
        .min({ at: 'attempted_at' })
        .first();
      const storedToRedMs = redAt - new Date((failedAt as { at: Date }).at).getTime();
      // Red within one quote interval of the verdict being stored (plus the browser's own latency, and
      // 3 s for a CI host that stalls this process, which serves the page's event stream).
      expect(storedToRedMs, `red ${redAfterMs} ms after tampering`).to.be.below(QUOTE_INTERVAL * 1000 + 4000);
      expect(await page.evaluate('window.notReloaded')).to.equal(true);
      expect(await row.locator('[data-field="event"]').textContent()).to.equal(NOT_IN_ALLOWLIST);
      expect(await page.evaluate(`getComputedStyle(document.querySelector('tr[data-agent="${victim.uuid}"] td')).color`)).to.equal('rgb(192, 38, 45)');
      await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-nodes.png'), fullPage: true });

      await page.goto(`${baseUrl}/dashboard/nodes/${victim.uuid}`);
      expect(await page.textContent('dd[data-field="status"]')).to.equal('FAIL');
      expect(await page.locator('.timeline .entry-fail code.event-id').first().textContent()).to.equal(NOT_IN_ALLOWLIST);
      expect(await page.locator('.timeline .entry-state').count()).to.be.above(0);
      expect(await page.locator('.timeline .entry-admin').first().textContent()).to.include('POST /agents/:agent_id by cert:');
      await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-node.png'), fullPage: true });

      await page.goto(`${baseUrl}/dashboard/nodes/${NO_TPM_NODE}`);
      expect(await page.textContent('dd[data-field="status"]')).to.match(/^(PENDING|UNREACHABLE)$/);
      expect(await page.textContent('dd[data-field="trust"]')).to.equal('id-only');
      expect(await page.textContent('dd[data-field="integrity"]')).to.include('integrity evidence unavailable');
      expect(await page.locator('.timeline .entry-admin').first().textContent()).to.include('POST /liveness/:agent_id by token:operator-of-default');
      await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-node-without-tpm.png'), fullPage: true });

      await page.goto(`${baseUrl}/dashboard/policies`);
      const policyRows = await page.locator('table.policies tbody tr').allTextContents();
      expect(policyRows.join('\n')).to.match(/runtime\s*ironlime-fleet\s*3/).and.to.match(/measured boot\s*ironlime-fleet\s*3/);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-policies.png'), fullPage: true });

      await page.goto(`${baseUrl}/dashboard`);
      expect(await count(page, 'FAIL')).to.equal('1');
      expect(await count(page, `state-${OperationalState.INVALID_QUOTE}`)).to.equal('1');
      expect(Number(await count(page, 'failuresHour'))).to.be.at.least(1);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-overview.png'), fullPage: true });

      await page.goto(`${baseUrl}/dashboard/nodes?q=${victim.uuid.slice(0, 12)}`);
      expect(await page.locator('table.nodes tbody tr').count()).to.equal(1);
    } finally {
      await context.close();
    }
  });

  it("a viewer token of another tenant sees nothing of the fleet, not even a node's page", async function () {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 600 } });
    try {
      const page = await liveOverview(context, 'tenant-b');
      expect(await count(page, 'total')).to.equal('0');
      expect(await count(page, 'FAIL')).to.equal('0');
      await page.goto(`${baseUrl}/dashboard/nodes`);
      expect(await page.locator('table.nodes tbody tr').count()).to.equal(0);
      const victim = fleet.fleet.agents[0]?.uuid as string;
      const reply = await page.goto(`${baseUrl}/dashboard/nodes/${victim}`);
      expect(reply?.status()).to.equal(404);
      expect(await page.content()).to.not.include(NOT_IN_ALLOWLIST);
      await page.goto(`${baseUrl}/dashboard/policies`);
      expect(await page.locator('table.policies tbody tr').count()).to.equal(0);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-other-tenant.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });

  it('works with JavaScript off (read-only pages), and a bad token is refused at the login form', async function () {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      await page.goto(`${baseUrl}/dashboard/login`);
      await page.fill('textarea[name=token]', 'not-a-token');
      await page.click('button[type=submit]');
      expect(await page.textContent('.error')).to.match(/^token refused: /);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-login.png'), fullPage: true });
      const logged = await logIn(context, baseUrl, await fleet.token('viewer', 'default'));
      expect(await count(logged, 'total')).to.equal('3');
      expect(await logged.textContent('#live')).to.include('live updates off');
      expect(Number(await count(logged, 'liveness-id-only-pending')) + Number(await count(logged, 'liveness-id-only-unreachable'))).to.equal(1);
      await logged.goto(`${baseUrl}/dashboard/nodes?sort=trust&dir=desc`);
      expect(await logged.locator('table.nodes tbody tr').count()).to.equal(4);
      // Strongest first: id-only is above the three whose level is unknown.
      expect(await logged.locator('table.nodes tbody tr').first().getAttribute('data-agent')).to.equal(NO_TPM_NODE);
    } finally {
      await context.close();
    }
  });
});
