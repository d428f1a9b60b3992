import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { SessionCookies } from '../../lib/broker/session-cookie.js';

describe('broker: stateless session cookies', function () {
  const master = new Uint8Array(randomBytes(32));
  const cookies = new SessionCookies(master, 300_000);
  const now = 1_800_000_000_000;

  it('a cookie opens to its session: same id, issue time, expiry and 32-byte nonce; every session differs', function () {
    const { cookie, session } = cookies.issue(now);
    expect(cookie).to.match(/^[A-Za-z0-9_-]{51}$/);
    const opened = cookies.open(cookie, now + 299_999);
    expect(opened).to.deep.equal({ ok: true, session });
    expect(session.expiresAt).to.equal(now + 300_000);
    expect(Buffer.from(session.nonce, 'base64')).to.have.length(32);
    const other = cookies.issue(now).session;
    expect([other.id, other.nonce]).to.not.deep.equal([session.id, session.nonce]);
  });

  it('another broker process with the same master key opens it (workers); one with another key does not', function () {
    const { cookie, session } = cookies.issue(now);
    expect(new SessionCookies(master, 300_000).open(cookie, now)).to.deep.equal({ ok: true, session });
    const foreign = new SessionCookies(new Uint8Array(randomBytes(32)), 300_000).open(cookie, now);
    expect(foreign).to.deep.equal({ ok: false, reason: 'the session cookie was not issued by this broker' });
  });

  it('refuses a forged, truncated, re-encoded, expired or future cookie', function () {
    const { cookie } = cookies.issue(now);
    const bytes = Buffer.from(cookie, 'base64url');
    for (const index of [0, 16, 21, 22, 37]) {
      const forged = Buffer.from(bytes);
      forged[index] = (forged[index] as number) ^ 1;
      expect(cookies.open(forged.toString('base64url'), now), `byte ${index}`).to.include({ ok: false });
    }
    expect(cookies.open(cookie.slice(0, 50), now)).to.deep.equal({ ok: false, reason: 'the session cookie is malformed' });
    expect(cookies.open(`${cookie}AA`, now)).to.deep.equal({ ok: false, reason: 'the session cookie is malformed' });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet[alphabet.indexOf(cookie.slice(-1)) ^ 1] as string;
    const reencoded = `${cookie.slice(0, -1)}${last}`;
    expect(Buffer.from(reencoded, 'base64url')).to.deep.equal(bytes);
    expect(cookies.open(reencoded, now)).to.deep.equal({ ok: false, reason: 'the session cookie is malformed' });
    expect(cookies.open(cookie, now + 300_000)).to.deep.equal({ ok: false, reason: 'the session has expired' });
    expect(cookies.open(cookies.issue(now + 60_000).cookie, now)).to.deep.equal({ ok: false, reason: 'the session cookie is from the future' });
  });
});
