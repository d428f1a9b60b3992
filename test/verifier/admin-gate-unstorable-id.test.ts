import { expect } from 'chai';
import { issueApiToken } from '../../lib/auth/api-token.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { timedHttpsCall } from '../helpers/timed-https-call.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';

/**
 * The admin gate looks up the tenant of the node a token's request names before the path is
 * validated. An id holding a NUL, which PostgreSQL cannot compare as text, made that lookup fail: a
 * 500 (logged as an error) for any token holder, a viewer's included, where the route's params answer 400.
 */
describe('verifier admin gate: a token request naming an agent id PostgreSQL cannot hold is 400, not 500', function () {
  this.timeout(120_000);
  const suite = verifierPerSuite('ironlime-admin-gate-id-');

  it('answers 400 on every /agents/{id}… and /liveness/{id} route, to a viewer as to an admin', async () => {
    const key = loadOrCreateTokenKey(suite.dataDir).privateKey;
    for (const role of ['viewer', 'admin'] as const) {
      const token = await issueApiToken({ subject: role, role, tenant: 'blue', ttlSeconds: 600 }, key);
      for (const [method, path] of [
        ['GET', '/v2.3/agents/%00'],
        ['GET', '/v2.3/agents/a%00b/history'],
        ['PUT', '/v2.3/agents/a%00/stop'],
        ['DELETE', '/v2.3/agents/%00'],
        ['GET', '/v2.3/liveness/%00'],
        ['DELETE', '/v2.3/liveness/node%00'],
      ] as const) {
        const reply = await timedHttpsCall(suite.verifier.url, suite.verifier.caCert, method, path, { authorization: `Bearer ${token}` });
        expect(reply.status, `${role} ${method} ${path}: ${reply.body}`).to.be.oneOf(role === 'viewer' && method !== 'GET' ? [403] : [400]);
      }
    }
  });
});
