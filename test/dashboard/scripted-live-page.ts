import { readFileSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { nodesPage } from '../../lib/dashboard/dashboard-pages.js';
import type { NodeRow } from '../../lib/dashboard/node-row.js';
import { REPO_ROOT } from '../helpers/paths.js';

const CHROMIUM = '/usr/bin/chromium';
const SCRIPT = readFileSync(path.join(REPO_ROOT, 'lib/dashboard/static/dashboard.js'), 'utf8');

/** One passing node as the nodes page and its live stream show it. */
export const PASSING: NodeRow = {
  agentId: 'agent-1',
  tenant: 'default',
  state: 3,
  label: 'Get Quote',
  status: 'PASS',
  stale: false,
  tableState: 'Get Quote',
  tone: 'pass',
  trustLevel: 'unknown',
  trustShown: 'unknown',
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

/** A real nodes page (`nodesPage` with `PASSING`, the real `dashboard.js`) whose live stream the test scripts, in headless Chromium. */
export interface ScriptedLivePage {
  readonly app: FastifyInstance;
  readonly browser: Browser;
  readonly url: string;
  close(): Promise<void>;
}

export async function startScriptedLivePage(events: (request: FastifyRequest, reply: FastifyReply) => FastifyReply | Promise<FastifyReply>): Promise<ScriptedLivePage> {
  const app = Fastify({ logger: false });
  app.get('/dashboard/static/dashboard.js', async (_request, reply) => reply.type('text/javascript').send(SCRIPT));
  app.get('/dashboard/nodes', async (_request, reply) =>
    reply.type('text/html').send(nodesPage(undefined, { search: '', sort: 'id', descending: false, page: 1 }, { rows: [PASSING], total: 1, page: 1, pages: 1 })),
  );
  app.get('/dashboard/events', events);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const { port } = app.server.address() as { port: number };
  return {
    app,
    browser,
    url: `http://127.0.0.1:${port}/dashboard/nodes`,
    async close() {
      await browser.close();
      await app.close();
    },
  };
}
