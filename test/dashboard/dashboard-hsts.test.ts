import { expect } from 'chai';
import { timedHttpsCall } from '../helpers/timed-https-call.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { viewerToken } from './dashboard-viewer.js';

/**
 * The dashboard is served over TLS but said nothing of it: a browser that had logged in still asked
 * a typed or linked http:// address of the host on the network, where an attacker could answer with a
 * login form of its own and take the token pasted into it. Every dashboard answer over TLS now carries
 * `Strict-Transport-Security`.
 */
describe('dashboard: answers over TLS carry Strict-Transport-Security', function () {
  this.timeout(60_000);
  const suite = verifierPerSuite('ironlime-dashboard-hsts-');
  let viewer: string;

  before(async () => {
    viewer = await viewerToken(suite.dataDir);
  });

  const call = (method: 'GET' | 'POST', path: string, headers: Record<string, string> = {}, body?: string) =>
    timedHttpsCall(suite.verifier.url, suite.verifier.caCert, method, path, headers, body);

  it('on the login page, a redirect to it, a page, the static files, a refused login and the login', async () => {
    const answers = {
      'login page': await call('GET', '/dashboard/login'),
      'redirect to the login page': await call('GET', '/dashboard'),
      'overview': await call('GET', '/dashboard', { authorization: `Bearer ${viewer}` }),
      'script': await call('GET', '/dashboard/static/dashboard.js'),
      'refused login': await call('POST', '/dashboard/login', { 'content-type': 'application/x-www-form-urlencoded' }, 'token=nope'),
      'login': await call('POST', '/dashboard/login', { 'content-type': 'application/x-www-form-urlencoded' }, `token=${viewer}`),
    };
    expect(Object.fromEntries(Object.entries(answers).map(([name, answer]) => [name, [answer.status, answer.headers['strict-transport-security']]]))).to.deep.equal({
      'login page': [200, 'max-age=31536000'],
      'redirect to the login page': [303, 'max-age=31536000'],
      'overview': [200, 'max-age=31536000'],
      'script': [200, 'max-age=31536000'],
      'refused login': [401, 'max-age=31536000'],
      'login': [303, 'max-age=31536000'],
    });
  });
});
