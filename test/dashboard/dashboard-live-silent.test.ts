import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { nodesPage } from '../../lib/dashboard/dashboard-pages.js';
import type { NodeRow } from '../../lib/dashboard/node-row.js';
import { REPO_ROOT } from '../helpers/paths.js';

const CHROMIUM = '/usr/bin/chromium';
const SCRIPT = readFileSync(path.join(REPO_ROOT, 'lib/dashboard/static/dashboard.js'), 'utf8');

const PASSING: NodeRow = {
  agentId: 'agent-1',
  tenant: 'default',
  state: 3,
  label: 'Get Quote',
  status: 'PASS',
  stale: false,
  tableState: 'Get Quote',
  tone: 'pass',
  trustLevel: 'unknown',
  liveness: null,
  integrityEvidence: null,
  lastSeen: null,
  lastFailure: null,
  attestationCount: 5,
  lastSuccess: new Date().toISOString(),
  lastEventId: null,
  runtimePolicy: null,
  mbPolicy: null,
  ip: '127.0.0.1',
  port: 9002,
};

/**
 * A stream that stays open and says nothing (the verifier's host powered off or cut off the network:
 * no FIN, no RST, and the browser notices nothing for hours; a stalled process) left the row green,
 * PASS, for as long as the tab was open. The page is real (`nodesPage`, `dashboard.js`); the streams
 * are scripted: the first sends the row and one `tick` (100 ms), then nothing; the second sends the row once the
 * test saw it unknown.
 */
describe('dashboard in headless Chromium: a live stream gone silent does not keep a row green', function () {
  this.timeout(90_000);
  let browser: Browser;
  let app: FastifyInstance;
  let streams = 0;
  const openStreams: { destroy(): void }[] = [];
  let letSecondStreamSend = (): void => {};
  const secondStreamMaySend = new Promise<void>((resolve) => (letSecondStreamSend = resolve));

  before(async () => {
    app = Fastify({ logger: false });
    app.get('/dashboard/static/dashboard.js', async (_request, reply) => reply.type('text/javascript').send(SCRIPT));
    app.get('/dashboard/nodes', async (_request, reply) =>
      reply.type('text/html').send(nodesPage(undefined, { search: '', sort: 'id', descending: false, page: 1 }, { rows: [PASSING], total: 1, page: 1, pages: 1 })),
    );
    app.get('/dashboard/events', (_request, reply) => {
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
    await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    for (const stream of openStreams) stream.destroy();
    await app?.close();
  });

  it('a PASS row whose stream goes silent turns pending, "unknown", and is sent again by a new stream', async () => {
    const { port } = app.server.address() as { port: number };
    const page = await browser.newPage();
    try {
      await page.goto(`http://127.0.0.1:${port}/dashboard/nodes`);
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
