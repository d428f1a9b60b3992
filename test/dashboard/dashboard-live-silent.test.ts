import { expect } from 'chai';
import { PASSING, startScriptedLivePage, type ScriptedLivePage } from './scripted-live-page.js';

/**
 * A stream that stays open and says nothing (the verifier's host powered off or cut off the network:
 * no FIN, no RST, and the browser notices nothing for hours; a stalled process) left the row green,
 * PASS, for as long as the tab was open. The page is real (`nodesPage`, `dashboard.js`); the streams
 * are scripted: the first sends the row and one `tick` (100 ms), then nothing; the second sends the row once the
 * test saw it unknown.
 */
describe('dashboard in headless Chromium: a live stream gone silent does not keep a row green', function () {
  this.timeout(90_000);
  let scripted: ScriptedLivePage | undefined;
  let streams = 0;
  const openStreams: { destroy(): void }[] = [];
  let letSecondStreamSend = (): void => {};
  const secondStreamMaySend = new Promise<void>((resolve) => (letSecondStreamSend = resolve));

  before(async () => {
    scripted = await startScriptedLivePage((_request, reply) => {
      streams += 1;
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
      openStreams.push(reply.raw);
      if (streams === 1) {
        reply.raw.write(`event: agents\ndata: ${JSON.stringify([PASSING])}\n\nevent: tick\ndata: 100\n\n`);
      } else {
        // Held until the test saw the row unknown.
        void secondStreamMaySend.then(() => reply.raw.write(`event: agents\ndata: ${JSON.stringify([PASSING])}\n\nevent: tick\ndata: 60000\n\n`));
      }
      return reply;
    });
  });

  after(async () => {
    for (const stream of openStreams) stream.destroy();
    await scripted?.close();
  });

  it('a PASS row whose stream goes silent turns pending, "unknown", and is sent again by a new stream', async () => {
    const page = await (scripted as ScriptedLivePage).browser.newPage();
    try {
      await page.goto((scripted as ScriptedLivePage).url);
      const row = page.locator('tr[data-agent="agent-1"]');
      await row.and(page.locator('.status-pass')).waitFor({ timeout: 10_000 });
      // Ten ticks of 100 ms and 5 s more of silence.
      await row.and(page.locator('.status-pending')).waitFor({ timeout: 40_000 });
      expect(await row.locator('[data-field="state"]').textContent()).to.equal('unknown: no live update for 6 s');
      letSecondStreamSend();
      // The tab gave up on the silent stream and opened a new one, whose first event sends the row again.
      await row.and(page.locator('.status-pass')).waitFor({ timeout: 20_000 });
      expect(streams).to.equal(2);
      expect(await row.locator('[data-field="state"]').textContent()).to.equal('Get Quote');
    } finally {
      await page.close();
    }
  });
});
