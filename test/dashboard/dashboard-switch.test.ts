import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadVerifierConfig } from '../../lib/verifier/verifier-config.js';
import { startVerifier } from '../../lib/verifier/verifier-server.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { viewerToken } from './dashboard-viewer.js';

describe('dashboard on and off, login and static files (in-process verifier)', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;
  let dataDir: string;

  beforeEach(async function () {
    opened = await openTestSchema();
    dataDir = mkdtempSync(path.join(tmpdir(), 'ironlime-dashboard-switch-'));
  });

  afterEach(async function () {
    await opened?.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('is on by default: pages need a login, the token becomes a strict cookie, the assets are served with their types', async function () {
    const verifier = await startVerifier({ dataDir, port: 0 }, { database: opened.database, inProcessForTests: true });
    try {
      const app = verifier.service.app;
      const anonymous = await app.inject({ method: 'GET', url: '/dashboard/nodes' });
      expect(anonymous.statusCode).to.equal(303);
      expect(anonymous.headers.location).to.equal('/dashboard/login');
      const token = await viewerToken(dataDir);
      const login = await app.inject({ method: 'POST', url: '/dashboard/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${token}` });
      expect(login.statusCode).to.equal(303);
      expect(login.headers['set-cookie']).to.match(new RegExp(`^__Host-ironlime_token=${token}; Path=/; Max-Age=(600|599); HttpOnly; Secure; SameSite=Strict$`));
      const page = await app.inject({ method: 'GET', url: '/dashboard/nodes?q=%3Cscript%3E&sort=nonsense&page=-3', headers: { cookie: `__Host-ironlime_token=${token}` } });
      expect(page.statusCode).to.equal(200);
      expect(page.headers['content-security-policy']).to.include("default-src 'self'");
      expect(page.body).to.include('value="&lt;script&gt;"').and.not.include('<script>alert');
      expect(page.body).to.include('0 node(s), page 1 of 1');
      const refused = await app.inject({ method: 'POST', url: '/dashboard/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'token=x.y.z' });
      expect(refused.statusCode).to.equal(401);
      expect(refused.body).to.include('token refused');
      const script = await app.inject({ method: 'GET', url: '/dashboard/static/dashboard.js' });
      expect(script.headers['content-type']).to.equal('text/javascript; charset=utf-8');
      expect(script.body).to.include("var url = '/dashboard/events' +").and.include('new EventSource(url)');
      expect((await app.inject({ method: 'GET', url: '/dashboard/static/..%2Fdashboard-routes.js' })).statusCode).to.equal(404);
      const missing = await app.inject({ method: 'GET', url: '/dashboard/nodes/nobody', headers: { authorization: `Bearer ${token}` } });
      expect(missing.statusCode).to.equal(404);
    } finally {
      await verifier.close();
    }
  });

  it('--no-dashboard (dashboard: false, IRONLIME_VERIFIER_DASHBOARD=false) serves nothing at /dashboard', async function () {
    expect(loadVerifierConfig({ env: { IRONLIME_VERIFIER_DASHBOARD: 'false' }, overrides: { dataDir } }).dashboard).to.equal(false);
    expect(loadVerifierConfig({ env: {}, overrides: { dataDir } }).dashboard).to.equal(true);
    const verifier = await startVerifier({ dataDir, port: 0, dashboard: false }, { database: opened.database, inProcessForTests: true });
    try {
      const reply = await verifier.service.app.inject({ method: 'GET', url: '/dashboard' });
      expect(reply.statusCode).to.equal(404);
      expect(JSON.parse(reply.body)).to.deep.include({ code: 404 });
    } finally {
      await verifier.close();
    }
  });
});
