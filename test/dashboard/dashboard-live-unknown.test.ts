import { expect } from 'chai';
import type { NodeRow } from '../../lib/dashboard/node-row.js';
import { PASSING, startScriptedLivePage, type ScriptedLivePage } from './scripted-live-page.js';

/** The same row once its PASS is older than the freshness bound (`nodeRow`). */
const STALE: NodeRow = {
  ...PASSING,
  status: 'PENDING (stale: no successful attestation within 66 s)',
  stale: true,
  tableState: 'Get Quote — PENDING (stale: no successful attestation within 66 s)',
  tone: 'pending',
};

/**
 * An open tab kept the colour of the last row it was sent: a stream whose reads then failed (the
 * database down) or that ended (the verifier gone, its token expired) left the row green, PASS, for as
 * long as the tab stayed open — past the freshness bound, when the status API says PENDING. The page
 * itself is real (`nodesPage`, `dashboard.js`); the stream is scripted, and turns only once the test
 * saw the row green (a fixed delay could pass before a slow browser showed it).
 */
describe('dashboard in headless Chromium: a live row nothing vouches for any more is unknown, not green', function () {
  this.timeout(120_000);
  let scripted: ScriptedLivePage | undefined;
  /** Called by the test once it saw the row green: the stream then does what `then` says. */
  let turn = (): void => {};
  /** What the scripted stream does after its first `agents` event. */
  let then: 'unavailable' | 'end' | 'stale' | 'refused' = 'unavailable';
  let streams = 0;

  before(async () => {
    scripted = await startScriptedLivePage((_request, reply) => {
      streams += 1;
      // Reconnections are refused, as a stream without a free slot is: the browser gives up.
      if (streams > 1 || then === 'refused') return reply.code(503).type('text/plain').send('too many live views open');
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
      reply.raw.write(`event: agents\ndata: ${JSON.stringify([PASSING])}\n\n`);
      turn = () => {
        if (then === 'unavailable') reply.raw.write('event: unavailable\ndata: "rows"\n\n');
        else if (then === 'stale') reply.raw.write(`event: agents\ndata: ${JSON.stringify([STALE])}\n\n`);
        else reply.raw.destroy();
      };
      return reply;
    });
  });

  after(async () => {
    await scripted?.close();
  });

  it('a PASS row whose live view was refused (no slot free) turns pending, "unknown", once no stream vouched for it for 25 s', async () => {
    then = 'refused';
    streams = 0;
    const page = await (scripted as ScriptedLivePage).browser.newPage();
    try {
      await page.goto((scripted as ScriptedLivePage).url);
      const row = page.locator('tr[data-agent="agent-1"]');
      await row.and(page.locator('.status-pass')).waitFor({ timeout: 10_000 });
      // Ten ticks of 2 s (no stream said its period) and 5 s.
      await row.and(page.locator('.status-pending')).waitFor({ timeout: 60_000 });
      expect(await row.locator('[data-field="state"]').textContent()).to.equal('unknown: live updates off (reload to refresh)');
      expect(streams).to.equal(1);
    } finally {
      await page.close();
    }
  });

  for (const [how, expected] of [
    ['unavailable', 'unknown: the verifier cannot read its database'],
    ['end', 'unknown: live updates stopped'],
    ['stale', STALE.tableState],
  ] as const) {
    it(`a PASS row, then the stream ${how === 'end' ? 'ends' : how === 'stale' ? 'sends it stale' : 'says its reads fail'}: the row turns pending and says why`, async () => {
      then = how;
      streams = 0;
      turn = () => {};
      const page = await (scripted as ScriptedLivePage).browser.newPage();
      try {
        await page.goto((scripted as ScriptedLivePage).url);
        const row = page.locator('tr[data-agent="agent-1"]');
        await row.and(page.locator('.status-pass')).waitFor({ timeout: 10_000 });
        // The live view is open once the stream was asked for; then the stream turns.
        while (streams === 0) await new Promise((resolve) => setTimeout(resolve, 20));
        turn();
        await row.and(page.locator('.status-pending')).waitFor({ timeout: 10_000 });
        expect(await row.locator('[data-field="state"]').textContent()).to.equal(expected);
      } finally {
        await page.close();
      }
    });
  }
});
