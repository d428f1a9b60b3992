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
 * itself is real (`nodesPage`, `dashboard.js`); the stream is scripted.
 */
describe('dashboard in headless Chromium: a live row nothing vouches for any more is unknown, not green', function () {
  this.timeout(120_000);
  let browser: Browser;
  let app: FastifyInstance;
  /** What the scripted stream does after its first `agents` event. */
  let then: 'unavailable' | 'end' | 'stale' | 'refused' = 'unavailable';
  let streams = 0;

  before(async () => {
    app = Fastify({ logger: false });
    app.get('/dashboard/static/dashboard.js', async (_request, reply) => reply.type('text/javascript').send(SCRIPT));
    app.get('/dashboard/nodes', async (_request, reply) =>
      reply.type('text/html').send(nodesPage(undefined, { search: '', sort: 'id', descending: false, page: 1 }, { rows: [PASSING], total: 1, page: 1, pages: 1 })),
    );
    app.get('/dashboard/events', (_request, reply) => {
      streams += 1;
      // Reconnections are refused, as a stream without a free slot is: the browser gives up.
      if (streams > 1 || then === 'refused') return reply.code(503).type('text/plain').send('too many live views open');
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
      reply.raw.write(`event: agents\ndata: ${JSON.stringify([PASSING])}\n\n`);
      setTimeout(() => {
        if (then === 'unavailable') reply.raw.write('event: unavailable\ndata: "rows"\n\n');
        else if (then === 'stale') reply.raw.write(`event: agents\ndata: ${JSON.stringify([STALE])}\n\n`);
        else reply.raw.destroy();
      }, 500);
      return reply;
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    await app?.close();
  });

  it('a PASS row whose live view was refused (no slot free) turns pending, "unknown", once no stream vouched for it for 25 s', async () => {
    then = 'refused';
    streams = 0;
    const { port } = app.server.address() as { port: number };
    const page = await browser.newPage();
    try {
      await page.goto(`http://127.0.0.1:${port}/dashboard/nodes`);
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
      const { port } = app.server.address() as { port: number };
      const page = await browser.newPage();
      try {
        await page.goto(`http://127.0.0.1:${port}/dashboard/nodes`);
        const row = page.locator('tr[data-agent="agent-1"]');
        await row.and(page.locator('.status-pass')).waitFor({ timeout: 10_000 });
        await row.and(page.locator('.status-pending')).waitFor({ timeout: 10_000 });
        expect(await row.locator('[data-field="state"]').textContent()).to.equal(expected);
      } finally {
        await page.close();
      }
    });
  }
});
