import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { issueApiToken } from '../../lib/auth/api-token.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';

describe('dashboard: NUL and other control characters in a query or a path', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;
  let dataDir: string;
  let verifier: RunningVerifier;
  let token: string;

  before(async function () {
    opened = await openTestSchema();
    dataDir = mkdtempSync(path.join(tmpdir(), 'ironlime-dashboard-ctl-'));
    verifier = await startVerifier({ dataDir, port: 0 }, { database: opened.database, inProcessForTests: true });
    token = await issueApiToken({ subject: 's', role: 'viewer', tenant: 'default', ttlSeconds: 600 }, loadOrCreateTokenKey(dataDir).privateKey);
  });

  after(async function () {
    await verifier?.close();
    await opened?.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function get(url: string): Promise<{ status: number; body: string }> {
    const reply = await verifier.service.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
    return { status: reply.statusCode, body: reply.body };
  }

  it('searches for a NUL or a control character as for any text no node matches', async function () {
    for (const q of ['%00', 'a%00b', '%01', '%1B%5B31m', '%7F']) {
      const page = await get(`/dashboard/nodes?q=${q}`);
      expect(page.status, q).to.equal(200);
      expect(page.body, q).to.include('0 node(s), page 1 of 1');
    }
  });

  it('answers 404 to a node id holding a NUL or a control character', async function () {
    for (const id of ['a%00b', '%00', 'a%0Ab', 'a%1Fb']) {
      const page = await get(`/dashboard/nodes/${id}`);
      expect(page.status, id).to.equal(404);
      expect(page.body, id).to.include('that you can see.');
    }
  });
});
