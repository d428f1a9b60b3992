import { expect } from 'chai';
import { timedHttpsCall } from '../helpers/timed-https-call.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { viewerToken } from './dashboard-viewer.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/**
 * Login CSRF (L1): a page of another site posted its own token to /dashboard/login and the victim's
 * browser got the attacker's cookie (the attacker's fleet shown as the operator's), or posted to
 * /dashboard/logout. Both refuse a request whose Origin is not the verifier's own, as the admin API does.
 */
describe('dashboard login and logout: cross-site forms are refused', function () {
  this.timeout(60_000);
  const suite = verifierPerSuite('ironlime-dashboard-csrf-');
  let token: string;

  before(async () => {
    token = await viewerToken(suite.dataDir, 'attacker', 'attacker');
  });

  const post = (path: string, headers: Record<string, string>, body: string) => timedHttpsCall(suite.verifier.url, suite.verifier.caCert, 'POST', path, { ...FORM, ...headers }, body);

  it('refuses 403 a login form from another origin, without setting the cookie; its own origin and none log in', async () => {
    for (const origin of ['https://evil.example', 'null']) {
      const foreign = await post('/dashboard/login', { origin }, `token=${token}`);
      expect(foreign.status, origin).to.equal(403);
      expect(foreign.headers['set-cookie'], origin).to.equal(undefined);
    }
    const own = await post('/dashboard/login', { origin: new URL(suite.verifier.url).origin }, `token=${token}`);
    expect(own.status).to.equal(303);
    expect(String(own.headers['set-cookie'])).to.include(`__Host-ironlime_token=${token}`);
    expect((await post('/dashboard/login', {}, `token=${token}`)).status).to.equal(303);
  });

  it("goes by the browser's Sec-Fetch-Site: cross-site is refused whatever the Origin; its own form posts Origin null beside same-origin", async () => {
    const own = new URL(suite.verifier.url).origin;
    for (const site of ['cross-site', 'same-site']) {
      expect((await post('/dashboard/login', { origin: own, 'sec-fetch-site': site }, `token=${token}`)).status, site).to.equal(403);
    }
    // Chromium on a page with Referrer-Policy: no-referrer, as the login page is.
    expect((await post('/dashboard/login', { origin: 'null', 'sec-fetch-site': 'same-origin' }, `token=${token}`)).status).to.equal(303);
    expect((await post('/dashboard/login', { origin: 'https://evil.example', 'sec-fetch-site': 'same-origin' }, `token=${token}`)).status).to.equal(403);
  });

  it('refuses 403 a logout form from another origin; its own origin logs out', async () => {
    const foreign = await post('/dashboard/logout', { origin: 'https://evil.example' }, '');
    expect(foreign.status).to.equal(403);
    expect(foreign.headers['set-cookie']).to.equal(undefined);
    const own = await post('/dashboard/logout', { origin: new URL(suite.verifier.url).origin }, '');
    expect(own.status).to.equal(303);
    expect(String(own.headers['set-cookie'])).to.include('Max-Age=0');
  });
});
