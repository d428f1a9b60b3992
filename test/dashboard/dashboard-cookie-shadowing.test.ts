import { expect } from 'chai';
import { issueApiToken } from '../../lib/auth/api-token.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { timedHttpsCall } from '../helpers/timed-https-call.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';

/**
 * Cookie injection: a cookie of the dashboard's name set by another origin of the host (with the
 * `__Host-` name, only another secure origin: another port) is sent beside the operator's own, and the
 * first one was taken: the node table showed the attacker's tenant's fleet (any viewer token of this
 * verifier) to the logged-in operator. Two dashboard cookies are refused: the operator is asked to
 * clear them, and sees no one's fleet.
 */
describe('dashboard: a second token cookie (cookie injection) is refused, not read first', function () {
  this.timeout(60_000);
  const suite = verifierPerSuite('ironlime-dashboard-cookies-');
  let operator: string;
  let attacker: string;

  before(async () => {
    const key = loadOrCreateTokenKey(suite.dataDir).privateKey;
    operator = await issueApiToken({ subject: 'ops', role: 'viewer', tenant: 'default', ttlSeconds: 600 }, key);
    attacker = await issueApiToken({ subject: 'mallory', role: 'viewer', tenant: 'mallory', ttlSeconds: 600 }, key);
  });

  const get = (path: string, cookie: string) => timedHttpsCall(suite.verifier.url, suite.verifier.caCert, 'GET', path, { cookie });

  it("two __Host-ironlime_token cookies: pages redirect to the login page, which says why; one cookie still logs in", async () => {
    const both = `__Host-ironlime_token=${attacker}; __Host-ironlime_token=${operator}`;
    for (const path of ['/dashboard', '/dashboard/nodes', '/dashboard/events']) {
      const reply = await get(path, both);
      expect(reply.status, `${path}: ${reply.body.slice(0, 300)}`).to.equal(303);
      expect(reply.body).to.not.include('mallory');
    }
    const login = await get('/dashboard/login', both);
    expect(login.body).to.include('more than one __Host-ironlime_token cookie');
    expect((await get('/dashboard/nodes', `__Host-ironlime_token=${operator}`)).status).to.equal(200);
    expect((await get('/dashboard/login', `__Host-ironlime_token=${operator}`)).body).to.not.include('more than one');
  });
});
