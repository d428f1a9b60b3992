import { expect } from 'chai';
import { issueApiToken, MAX_TOKEN_TTL_SECONDS, TOKEN_CLOCK_TOLERANCE_SECONDS } from '../../lib/auth/api-token.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { MINIMAL_REFSTATE } from '../helpers/refstate-fixture.js';
import { livenessBody, useTokenVerifier } from './helpers/token-verifier.js';

/** How long after its headers were admitted the token of `expiringToken` is past its expiry and the skew. */
const EXPIRES_IN_MS = 1500;

/**
 * The admin gate checks a bearer token's expiry on the request's headers; the body may take minutes to
 * arrive. As with a revocation, every change checks the expiry again in its own transaction: a request
 * whose token expired while its body was held is refused 401 and changes nothing.
 */
describe('admin changes check that the bearer token has not expired in their transaction, not only at the headers', function () {
  this.timeout(60_000);
  const v = useTokenVerifier();

  /** An operator token of tenant-a still admitted now (within the clock skew) and refused from `EXPIRES_IN_MS` on. */
  async function expiringToken(): Promise<string> {
    const ttlSeconds = 60;
    const issuedAt = new Date(Date.now() + EXPIRES_IN_MS - (ttlSeconds + TOKEN_CLOCK_TOLERANCE_SECONDS) * 1000);
    return issueApiToken({ subject: 'short-lived', role: 'operator', tenant: 'tenant-a', ttlSeconds }, loadOrCreateTokenKey(v.dataDir).privateKey, issuedAt);
  }

  async function pastExpiry(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, EXPIRES_IN_MS + 1000));
  }

  it('refuses a policy create whose token expired while its body was held, and stores nothing', async function () {
    const token = await expiringToken();
    const held = await v.heldCall('POST', '/v2.3/mbpolicies/late', token, { mb_policy: MINIMAL_REFSTATE });
    await pastExpiry();
    const reply = await held.send();
    expect(reply.status, reply.body).to.equal(401);
    expect(reply.body).to.include('token refused: expired');
    expect(await v.knex('verifier_mb_policies').where({ name: 'late' }).first()).to.equal(undefined);
  });

  it('refuses a liveness enrolment whose token expired while its body was held, and enrols nothing', async function () {
    const token = await expiringToken();
    const held = await v.heldCall('POST', '/v2.3/liveness/late-node', token, livenessBody(v.verifier.caCert));
    await pastExpiry();
    const reply = await held.send();
    expect(reply.status, reply.body).to.equal(401);
    expect(await v.knex('verifier_liveness').where({ agent_id: 'late-node' }).first()).to.equal(undefined);
  });

  it('completes a change of a token still valid when it commits', async function () {
    const token = await issueApiToken({ subject: 'long-lived', role: 'operator', tenant: 'tenant-a', ttlSeconds: MAX_TOKEN_TTL_SECONDS }, loadOrCreateTokenKey(v.dataDir).privateKey);
    const held = await v.heldCall('POST', '/v2.3/mbpolicies/in-time', token, { mb_policy: MINIMAL_REFSTATE });
    const reply = await held.send();
    expect(reply.status, reply.body).to.equal(201);
  });
});
