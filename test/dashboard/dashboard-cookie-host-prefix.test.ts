import { expect } from 'chai';
import { issueApiToken } from '../../lib/auth/api-token.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { timedHttpsCall } from '../helpers/timed-https-call.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';

/**
 * The login cookie was `ironlime_token` (Path=/dashboard): any origin of the host — plain HTTP, so a
 * network attacker answering one plain request, or a sibling domain — could set one, and a browser
 * with none yet was logged in as the attacker's viewer (the attacker's fleet shown as the operator's).
 * It is `__Host-ironlime_token` now (Path=/, Secure, no Domain: only a secure origin of this very host
 * can set it); the old name is not read. `Path=/` sends it to the admin API too, which does not take it.
 */
describe('dashboard: the login cookie is __Host-ironlime_token, read by the dashboard only', function () {
  this.timeout(60_000);
  const suite = verifierPerSuite('ironlime-dashboard-host-cookie-');
  let viewer: string;
  let admin: string;

  before(async () => {
    const key = loadOrCreateTokenKey(suite.dataDir).privateKey;
    viewer = await issueApiToken({ subject: 'ops', role: 'viewer', tenant: 'default', ttlSeconds: 600 }, key);
    admin = await issueApiToken({ subject: 'root', role: 'admin', tenant: 'default', ttlSeconds: 600 }, key);
  });

  const call = (method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: string) =>
    timedHttpsCall(suite.verifier.url, suite.verifier.caCert, method, path, headers, body);

  it('login sets a __Host- cookie (Path=/, Secure, no Domain); logout clears it at the same path', async () => {
    const login = await call('POST', '/dashboard/login', { 'content-type': 'application/x-www-form-urlencoded' }, `token=${viewer}`);
    expect(login.status).to.equal(303);
    const set = String(login.headers['set-cookie']);
    expect(set).to.match(/^__Host-ironlime_token=[^;]+; Path=\/; Max-Age=\d+; HttpOnly; Secure; SameSite=Strict$/);
    const logout = await call('POST', '/dashboard/logout', {});
    expect(String(logout.headers['set-cookie'])).to.match(/^__Host-ironlime_token=; Path=\/; Max-Age=0;/);
  });

  it('the old ironlime_token cookie logs no one in', async () => {
    const old = await call('GET', '/dashboard/nodes', { cookie: `ironlime_token=${viewer}` });
    expect(old.status).to.equal(303);
    expect(old.headers['location']).to.equal('/dashboard/login');
    expect((await call('GET', '/dashboard/nodes', { cookie: `__Host-ironlime_token=${viewer}` })).status).to.equal(200);
  });

  it('the admin API does not take the cookie, only Authorization', async () => {
    const byCookie = await call('GET', '/v2.3/agents/', { cookie: `__Host-ironlime_token=${admin}` });
    expect(byCookie.status, byCookie.body).to.equal(403);
    const byHeader = await call('GET', '/v2.3/agents/', { authorization: `Bearer ${admin}` });
    expect(byHeader.status, byHeader.body).to.equal(200);
  });
});
