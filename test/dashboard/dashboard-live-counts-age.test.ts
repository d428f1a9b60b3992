import { expect } from 'chai';
import { PASSING, startScriptedLivePage, type ScriptedLivePage } from './scripted-live-page.js';

const OVERVIEW = {
  total: 1,
  byState: [{ state: 3, label: 'Get Quote', count: 1 }],
  byStatus: { PASS: 1, FAIL: 0, PENDING: 0 },
  stalePasses: 0,
  attestationsLastMinute: 30,
  failuresLastHour: 0,
  lateRounds: 0,
  byClaimedTrustLevel: { unknown: 1 },
  byLiveness: { 'id-secret': { alive: 0, pending: 0, unreachable: 0, failed: 0 }, 'id-only': { alive: 0, pending: 0, unreachable: 0, failed: 0 } },
};

/**
 * A stream asks the next overview only once the last arrived, one read at a time for every tab and
 * tenant, each up to the database's 30 s statement bound: its ticks and rows went on while the counts
 * (the footer's "failing in the fleet: 0") stayed as last sent, for as long as the reads lagged. The page
 * is real (`nodesPage`, `dashboard.js`); the stream is scripted: one overview, then rows and a tick every
 * 100 ms, and a second overview once the test saw the counts unknown.
 */
describe('dashboard in headless Chromium: counts no overview refreshed turn unknown while ticks go on', function () {
  this.timeout(90_000);
  let scripted: ScriptedLivePage | undefined;
  const timers: NodeJS.Timeout[] = [];
  const openStreams: { destroy(): void }[] = [];
  let sendOverview = (): void => {};

  before(async () => {
    scripted = await startScriptedLivePage((_request, reply) => {
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
      openStreams.push(reply.raw);
      const overview = `event: overview\ndata: ${JSON.stringify(OVERVIEW)}\n\n`;
      reply.raw.write(overview);
      sendOverview = () => reply.raw.write(overview);
      timers.push(setInterval(() => reply.raw.write(`event: agents\ndata: ${JSON.stringify([PASSING])}\n\nevent: tick\ndata: 100\n\n`), 100));
      return reply;
    });
  });

  after(async () => {
    for (const timer of timers) clearInterval(timer);
    for (const stream of openStreams) stream.destroy();
    await scripted?.close();
  });

  it('the footer\'s failing count says "?" once no overview came for ten ticks and 5 s; the next overview shows it again', async () => {
    const page = await (scripted as ScriptedLivePage).browser.newPage();
    try {
      await page.goto((scripted as ScriptedLivePage).url);
      const failing = page.locator('#fleet-failing [data-count="failing"]');
      await page.locator('#fleet-failing:not([hidden])').waitFor({ timeout: 10_000 });
      expect(await failing.textContent()).to.equal('0');
      // Ten ticks of 100 ms and 5 s more without an overview.
      await page.locator('#fleet-failing [data-count="failing"]:text-is("?")').waitFor({ timeout: 40_000 });
      expect(await page.locator('#live').textContent()).to.match(/^live: counts not read for \d+ s, unknown$/);
      // The rows are still read and sent: they keep their colour.
      expect(await page.locator('tr[data-agent="agent-1"].status-pass').count()).to.equal(1);
      sendOverview();
      await page.locator('#fleet-failing [data-count="failing"]:text-is("0")').waitFor({ timeout: 10_000 });
    } finally {
      await page.close();
    }
  });
});
