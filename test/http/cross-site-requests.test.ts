import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { issueApiToken } from '../../lib/auth/api-token.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { timedHttpsCall } from '../helpers/timed-https-call.js';
import { MINIMAL_REFSTATE } from '../helpers/refstate-fixture.js';


/**
 * CSRF (M-3): a page of another site can make a browser that holds the verifier's client certificate
 * (or an operator's token cookie) post a `text/plain` or form body without a CORS preflight. The admin
 * routes refuse such bodies (415) and any state-changing request whose `Origin` is another site (403).
 */
describe('verifier: cross-site requests to the admin API are refused', function () {
  this.timeout(60_000);
  let dir: string;
  let opened: OpenedDatabase;
  let verifier: RunningVerifier;
  let operator: string;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-cross-site-'));
    opened = await openTestSchema();
    verifier = await startVerifier({ dataDir: dir, port: 0, quoteInterval: 3600 }, { database: opened.database });
    operator = await issueApiToken({ subject: 'op', role: 'operator', tenant: 'default', ttlSeconds: 600 }, loadOrCreateTokenKey(dir).privateKey);
  });

  after(async () => {
    await verifier?.close();
    await opened?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const postPolicy = (name: string, headers: Record<string, string>) =>
    timedHttpsCall(verifier.url, verifier.caCert, 'POST', `/v2.3/mbpolicies/${name}`, { authorization: `Bearer ${operator}`, ...headers }, JSON.stringify({ mb_policy: MINIMAL_REFSTATE }));

  it('refuses 415 a text/plain or form body, which was parsed as JSON and acted on (201)', async () => {
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const reply = await postPolicy('csrf', { 'content-type': type });
      expect(reply.status, type).to.equal(415);
      expect(JSON.parse(reply.body).code, type).to.equal(415);
    }
  });

  it('refuses 403 a state-changing request from another origin; its own origin, none, and a GET from anywhere pass', async () => {
    const foreign = await postPolicy('foreign', { 'content-type': 'application/json', origin: 'https://evil.example' });
    expect(foreign.status).to.equal(403);
    expect(JSON.parse(foreign.body)).to.deep.equal({ code: 403, status: 'cross-origin request refused', results: {} });
    const own = new URL(verifier.url).origin;
    expect((await postPolicy('own', { 'content-type': 'application/json', origin: own })).status).to.equal(201);
    const { port } = new URL(verifier.url);
    const spelt = { 'content-type': 'application/json', host: `LocalHost:${port}`, origin: `https://localhost:${port}` };
    expect((await postPolicy('own-host-case', spelt)).status, 'the Host header in other case').to.equal(201);
    expect((await postPolicy('opaque', { 'content-type': 'application/json', origin: 'null' })).status, 'opaque origin').to.equal(403);
    expect((await postPolicy('none', { 'content-type': 'application/json' })).status).to.equal(201);
    // A client's own action (address bar, a tool that sets Fetch metadata): no page of another site sends it.
    expect((await postPolicy('fetch-site-none', { 'content-type': 'application/json', 'sec-fetch-site': 'none' })).status, 'Sec-Fetch-Site: none').to.equal(201);
    expect((await postPolicy('untyped', {})).status).to.equal(201);
    const read = await timedHttpsCall(verifier.url, verifier.caCert, 'GET', '/v2.3/mbpolicies/own', { authorization: `Bearer ${operator}`, origin: 'https://evil.example' });
    expect(read.status).to.equal(200);
  });
});
