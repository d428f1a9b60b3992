import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { RTL_RUN_SOURCE } from '../../lib/dashboard/isolated-text.js';
import { LivenessRepository } from '../../lib/verifier/liveness/liveness-repository.js';
import { seesEveryTenant, storeLivenessState } from '../helpers/liveness-state.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { viewerToken } from './dashboard-viewer.js';
import { insertFailedRound } from './node-history.js';

const CHROMIUM = '/usr/bin/chromium';
const CERT = '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n';
/** A file whose directory is an Arabic letter: the bidi algorithm drew it `/opt/10/20/ا`, another path. */
const ARABIC_PATH = '/opt/ا/10/20';
/** A legitimate name of two Hebrew words: it must still read right to left, its letters shown as they are. */
const HEBREW_PATH = '/srv/קובץ חדש/1.txt';
/** A node's answer naming another agent, as its last failure quotes it; then another, sent by the live updates. */
const ANSWERED_ID = 'node/ב/30/40';
const LATER_ID = 'node/ג/50/60';
/** Letters of right-to-left scripts in the strings above. */
const RTL = /[\u0590-\u08ff]/u;

const failedState = (answered: string) => ({ status: 'failed', misses: 0, lastSeen: null, lastFailure: `the liveness answer names another agent (${answered})` }) as const;

/**
 * In the page: the x of each UTF-16 unit of the first occurrence of `needle` in the text of
 * `selector`'s element, as Chromium drew it (the middle of its box); null when the text is not there as it is.
 */
const DRAWN_XS = `(selector, needle) => {
  const root = document.querySelector(selector);
  if (root === null) return null;
  const units = [];
  let text = '';
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
    for (let offset = 0; offset < node.data.length; offset += 1) units.push({ node, offset });
    text += node.data;
  }
  const start = text.indexOf(needle);
  if (start < 0) return null;
  return units.slice(start, start + needle.length).map(({ node, offset }) => {
    const range = document.createRange();
    range.setStart(node, offset);
    range.setEnd(node, offset + 1);
    const box = range.getBoundingClientRect();
    return box.left + box.width / 2;
  });
}`;

async function drawnXs(page: Page, selector: string, needle: string): Promise<number[] | null> {
  return (await page.evaluate(`(${DRAWN_XS})(${JSON.stringify(selector)}, ${JSON.stringify(needle)})`)) as number[] | null;
}

/** Opens every `<details>` of the page: a closed one's text is not drawn. */
const OPEN_DETAILS = "document.querySelectorAll('details').forEach((details) => { details.open = true; })";

/**
 * `needle` reads in its own order, left to right, each run of right-to-left letters (and the spaces
 * between them) taken as one piece, which itself reads right to left.
 */
function expectReadsInOrder(xs: number[] | null, needle: string, where: string): void {
  expect(xs, `${where}: ${needle} shown as it is`).to.not.equal(null);
  const pieces: { min: number; max: number; rtl: number[] }[] = [];
  const units = [...needle];
  units.forEach((unit, i) => {
    const x = (xs as number[])[i] as number;
    const last = pieces.at(-1);
    const inRun = RTL.test(unit) || (unit === ' ' && RTL.test(units[i - 1] ?? '') && RTL.test(units[i + 1] ?? ''));
    if (inRun && last !== undefined && last.rtl.length > 0) {
      last.rtl.push(x);
      last.min = Math.min(last.min, x);
      last.max = Math.max(last.max, x);
    } else {
      pieces.push({ min: x, max: x, rtl: inRun ? [x] : [] });
    }
  });
  for (let i = 1; i < pieces.length; i += 1) {
    expect((pieces[i] as { min: number }).min, `${where}: piece ${i} of ${needle} is right of the one before`).to.be.above((pieces[i - 1] as { max: number }).max);
  }
  for (const piece of pieces.filter((p) => p.rtl.length > 1)) {
    expect(piece.rtl[0], `${where}: the right-to-left letters of ${needle} read right to left`).to.be.above(piece.rtl.at(-1) as number);
  }
}

/**
 * Failure contexts and liveness reasons quote paths and ids a node chose. Letters of right-to-left
 * scripts in them made the bidi algorithm reorder what is around them: `/opt/ا/10/20` was drawn as
 * `/opt/10/20/ا`, another path. Each run of such letters is isolated (`<bdi>`, on the page and by the
 * live updates): the text reads in its own order, and a Hebrew or Arabic name still reads right to left.
 */
describe('dashboard in headless Chromium: right-to-left letters a node sent do not reorder the text around them', function () {
  this.timeout(120_000);
  const suite = verifierPerSuite('ironlime-dashboard-rtl-');
  let browser: Browser;

  before(async () => {
    const knex = suite.database.database.knex;
    // agent-000001 is tenant `default`.
    await seedVerifierAgents(knex, 1, 0);
    await insertFailedRound(knex, 'agent-000001', [
      { event_id: 'ima.validation.ima-ng.not_in_allowlist', context: { path: ARABIC_PATH } },
      { event_id: 'ima.validation.ima-ng.not_in_allowlist', context: { path: HEBREW_PATH } },
    ]);
    const liveness = new LivenessRepository(knex);
    // Another verifier id: this verifier's monitor leaves its state alone.
    await liveness.enrol(
      { agentId: 'live-rtl', tenant: 'default', verifierId: 'elsewhere', mode: 'id-only', trustLevel: 'id-only', ip: '127.0.0.1', port: 9, mtlsCert: CERT, proofKey: null },
      noAuditRecord,
      seesEveryTenant,
    );
    await storeLivenessState(liveness, 'live-rtl', failedState(ANSWERED_ID));
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
  });

  async function openPage(urlPath: string): Promise<Page> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    await context.addCookies([{ name: '__Host-ironlime_token', value: await viewerToken(suite.dataDir), url: suite.verifier.url }]);
    const page = await context.newPage();
    await page.goto(`${suite.verifier.url}${urlPath}`);
    return page;
  }

  it('the live updates isolate with the same pattern as the pages', () => {
    expect(readFileSync(path.join(REPO_ROOT, 'lib/dashboard/static/dashboard.js'), 'utf8')).to.include(`var RTL_RUN = /${RTL_RUN_SOURCE}/gu;`);
  });

  it('an Arabic directory in a failure context reads in its place, a Hebrew name still right to left', async () => {
    const page = await openPage('/dashboard/nodes/agent-000001');
    try {
      await page.evaluate(OPEN_DETAILS);
      for (const shown of [ARABIC_PATH, HEBREW_PATH]) expectReadsInOrder(await drawnXs(page, 'ol.timeline pre', shown), shown, 'the failure context');
    } finally {
      await page.context().close();
    }
  });

  it("a node's answer in its last failure and its timeline reads in its own order, also once the live updates rewrote it", async () => {
    const page = await openPage('/dashboard/nodes/live-rtl');
    try {
      await page.evaluate(OPEN_DETAILS);
      expectReadsInOrder(await drawnXs(page, 'dd[data-field="failure"]', ANSWERED_ID), ANSWERED_ID, 'the last failure as rendered');
      expectReadsInOrder(await drawnXs(page, 'ol.timeline pre', ANSWERED_ID), ANSWERED_ID, "the timeline's reason");
      // A failed node stays failed (`saveState` keeps it): its reason changed as a new enrolment's would.
      await suite.database.database.knex('verifier_liveness').update({ last_failure: failedState(LATER_ID).lastFailure }).where({ agent_id: 'live-rtl' });
      await page.locator('dd[data-field="failure"]', { hasText: LATER_ID }).waitFor({ timeout: 20_000 });
      expectReadsInOrder(await drawnXs(page, 'dd[data-field="failure"]', LATER_ID), LATER_ID, 'the last failure as the live updates wrote it');
    } finally {
      await page.context().close();
    }
  });
});
