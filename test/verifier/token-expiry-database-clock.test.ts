import { expect } from 'chai';
import { issueApiToken, TOKEN_CLOCK_TOLERANCE_SECONDS } from '../../lib/auth/api-token.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { MINIMAL_REFSTATE } from '../helpers/refstate-fixture.js';
import { timedHttpsCall } from '../helpers/timed-https-call.js';
import { useTokenVerifier } from './helpers/token-verifier.js';

/** How far behind the database's clock this test sets the verifier process's own clock. */
const BEHIND_MS = 10 * 60_000;

/**
 * Runs `work` with this process's `Date` (`new Date()`, `Date.now()`) `BEHIND_MS` behind: the host
 * clock of a verifier that is behind. TLS and the monotonic clock do not read it.
 */
async function withProcessClockBehind<T>(work: () => Promise<T>, behindMs = BEHIND_MS): Promise<T> {
  const RealDate = Date;
  class BehindDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(RealDate.now() - behindMs);
      else super(...(args as [number]));
    }

    static override now(): number {
      return RealDate.now() - behindMs;
    }
  }
  globalThis.Date = BehindDate as DateConstructor;
  try {
    return await work();
  } finally {
    globalThis.Date = RealDate;
  }
}

/**
 * A token's `exp` is judged on the database's clock, as every other trust judgement of the verifier
 * processes sharing it: a process whose host clock is behind does not admit a token that expired.
 */
describe("API tokens are judged on the database's clock, not the verifier host's", function () {
  this.timeout(60_000);
  const v = useTokenVerifier();

  /** An operator token of an hour that expired 5 min ago (true time), well past the 30 s skew. */
  function expiredToken(): Promise<string> {
    const issuedAt = new Date(Date.now() - 65 * 60_000);
    return issueApiToken({ subject: 'expired', role: 'operator', tenant: 'tenant-a', ttlSeconds: 3600 }, loadOrCreateTokenKey(v.dataDir).privateKey, issuedAt);
  }

  it('refuses a read with a token that expired, on a verifier whose clock is 10 min behind', async function () {
    const token = await expiredToken();
    const reply = await withProcessClockBehind(() => v.call('GET', '/v2.3/mbpolicies', token));
    expect(reply.status, reply.body).to.equal(401);
    expect(reply.body).to.include('token refused: expired');
  });

  it('refuses a change with that token, and stores nothing', async function () {
    const token = await expiredToken();
    const reply = await withProcessClockBehind(() => v.call('POST', '/v2.3/mbpolicies/late-clock', token, { mb_policy: MINIMAL_REFSTATE }));
    expect(reply.status, reply.body).to.equal(401);
    expect(await v.knex('verifier_mb_policies').where({ name: 'late-clock' }).first()).to.equal(undefined);
  });

  it('refuses, in its transaction, a change whose token expired while its body was held, on that verifier', async function () {
    // Valid (within the skew) when the headers arrive, expired 1.5 s later: the gate admits it, the change's own check refuses it.
    const issuedAt = new Date(Date.now() + 1500 - (60 + TOKEN_CLOCK_TOLERANCE_SECONDS) * 1000);
    const token = await issueApiToken({ subject: 'short-lived', role: 'operator', tenant: 'tenant-a', ttlSeconds: 60 }, loadOrCreateTokenKey(v.dataDir).privateKey, issuedAt);
    const reply = await withProcessClockBehind(async () => {
      const held = await v.heldCall('POST', '/v2.3/mbpolicies/held-late-clock', token, { mb_policy: MINIMAL_REFSTATE });
      await new Promise((resolve) => setTimeout(resolve, 2500));
      return held.send();
    });
    expect(reply.status, reply.body).to.equal(401);
    expect(reply.body).to.include('token refused: expired');
    expect(await v.knex('verifier_mb_policies').where({ name: 'held-late-clock' }).first()).to.equal(undefined);
  });

  it("gives a dashboard login's cookie the token's life left on the database's clock, on a verifier whose clock is 10 min behind or ahead", async function () {
    const token = await v.token('viewer', 'tenant-a');
    const exp = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8')).exp as number;
    for (const offsetMs of [BEHIND_MS, -BEHIND_MS]) {
      const left = exp - Math.floor(Date.now() / 1000);
      const reply = await withProcessClockBehind(
        () =>
          timedHttpsCall(v.verifier.url, v.verifier.caCert, 'POST', '/dashboard/login', { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(v.verifier.url).origin }, `token=${token}`),
        offsetMs,
      );
      expect(reply.status, reply.body).to.equal(303);
      const maxAge = Number(/Max-Age=(\d+)/.exec(String(reply.headers['set-cookie']))?.[1]);
      // Generous: the login took at most a minute; the process clock would make it 600 s off.
      expect(maxAge).to.be.within(left - 60, left);
    }
  });

  it("admits a token issued now on the true clock, not yet valid on that verifier's own", async function () {
    const token = await v.token('operator', 'tenant-a');
    const reply = await withProcessClockBehind(() => v.call('GET', '/v2.3/mbpolicies', token));
    expect(reply.status, reply.body).to.equal(200);
  });
});
