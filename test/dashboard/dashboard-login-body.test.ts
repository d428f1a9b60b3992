import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { numberArrayBody, timedHttpsCall } from '../helpers/timed-https-call.js';

describe('dashboard login: a public route with its own small body limit (H-1)', function () {
  this.timeout(120_000);
  let dir: string;
  let opened: OpenedDatabase;
  let verifier: RunningVerifier;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-login-body-'));
    opened = await openTestSchema();
    verifier = await startVerifier({ dataDir: dir, port: 0, quoteInterval: 3600 }, { database: opened.database });
  });

  after(async () => {
    await verifier?.close();
    await opened?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const login = (type: string, body: string) => timedHttpsCall(verifier.url, verifier.caCert, 'POST', '/dashboard/login', { 'content-type': type }, body);

  it('refuses 413 a JSON body over 8 KiB without reading it (it was parsed up to the service limit, 64 MiB)', async () => {
    const big = await login('application/json', JSON.stringify({ token: 'a'.repeat(48 * 1024 * 1024) }));
    expect(big.status).to.equal(413);
    const array = await login('application/json', numberArrayBody(8 * 1024 * 1024));
    expect(array.status).to.equal(413);
    expect(array.worstStallMs).to.be.below(1000);
  });

  it('still takes a small form or JSON body (a refused token is a 401 page)', async () => {
    expect((await login('application/x-www-form-urlencoded', 'token=x.y.z')).status).to.equal(401);
    expect((await login('application/json', '{"token":"x.y.z"}')).status).to.equal(401);
  });
});
