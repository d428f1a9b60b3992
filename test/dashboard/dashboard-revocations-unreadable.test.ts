import { expect } from 'chai';
import { timedHttpsCall } from '../helpers/timed-https-call.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { viewerToken } from './dashboard-viewer.js';

/**
 * A token's revocation that cannot be looked up (the database down) is not admitted — but the
 * dashboard took that for a bad token: a logged-in operator was sent to the login page as if logged
 * out, and logging in again showed the database's error (the SQL statement) as the refusal. It is the
 * dashboard's failure, a 500 page, as the admin API answers 500.
 */
describe('dashboard: a revocation that cannot be read is an error page, not a log-in', function () {
  this.timeout(60_000);
  const suite = verifierPerSuite('ironlime-dashboard-revocations-');
  let token: string;

  before(async () => {
    token = await viewerToken(suite.dataDir);
  });

  const call = (method: string, path: string, headers: Record<string, string>, body?: string) => timedHttpsCall(suite.verifier.url, suite.verifier.caCert, method, path, headers, body);

  it('pages, live updates and the login form answer 500 without the database error while the revocations cannot be read', async () => {
    const knex = suite.database.database.knex;
    const cookie = { cookie: `__Host-ironlime_token=${token}` };
    expect((await call('GET', '/dashboard', cookie)).status).to.equal(200);
    await knex.schema.renameTable('api_token_revocations', 'api_token_revocations_away');
    try {
      for (const path of ['/dashboard', '/dashboard/nodes', '/dashboard/events']) {
        const reply = await call('GET', path, cookie);
        expect(reply.status, `${path}: ${reply.body}`).to.equal(500);
        expect(reply.headers['location'], path).to.equal(undefined);
      }
      const login = await call('POST', '/dashboard/login', { 'content-type': 'application/x-www-form-urlencoded' }, `token=${token}`);
      expect(login.status, login.body).to.equal(500);
      expect(login.headers['set-cookie']).to.equal(undefined);
      expect(login.body).to.not.match(/api_token_revocations|select/i);
    } finally {
      await knex.schema.renameTable('api_token_revocations_away', 'api_token_revocations');
    }
    expect((await call('GET', '/dashboard', cookie)).status).to.equal(200);
  });
});
