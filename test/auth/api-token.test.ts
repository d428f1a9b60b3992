import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { decodeJwt, SignJWT, UnsecuredJWT } from 'jose';
import { issueApiToken, refuseExpiredToken, TOKEN_AUDIENCE, TOKEN_ISSUER, TokenRefused, verifyApiToken } from '../../lib/auth/api-token.js';
import { principalAllows, principalSeesTenant, type Principal } from '../../lib/auth/roles.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { parseTokenTtl } from '../../lib/auth/token-ttl.js';
import { runCli } from '../helpers/cli-runner.js';

const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });

async function refusal(token: string, now?: Date): Promise<string> {
  try {
    await verifyApiToken(token, key.publicKey, { now });
  } catch (error) {
    expect(error).to.be.instanceOf(TokenRefused);
    return (error as Error).message;
  }
  throw new Error('the token was accepted');
}

describe('API tokens', () => {
  it('a token issued for a role and tenant verifies back to that principal', async () => {
    const token = await issueApiToken({ subject: 'alice', role: 'viewer', tenant: 'tenant-a', ttlSeconds: 600 }, key.privateKey);
    expect(await verifyApiToken(token, key.publicKey)).to.deep.equal({ kind: 'token', subject: 'alice', role: 'viewer', tenant: 'tenant-a', tokenId: String(decodeJwt(token).jti), expiresAt: decodeJwt(token).exp });
  });

  it('refuseExpiredToken refuses a token from the second verifyApiToken does, not before', async () => {
    const now = new Date('2026-12-02T18:00:00Z');
    const token = await issueApiToken({ subject: 'a', role: 'admin', tenant: 't', ttlSeconds: 60 }, key.privateKey, now);
    const { expiresAt } = await verifyApiToken(token, key.publicKey, { now });
    for (const secondsLater of [60, 89, 90, 91, 3600]) {
      const later = new Date(now.getTime() + secondsLater * 1000);
      const verified = await refusal(token, later).then((message) => message, (error: Error) => (error.message === 'the token was accepted' ? 'accepted' : error.message));
      let rechecked = 'accepted';
      try {
        refuseExpiredToken(expiresAt, later);
      } catch (error) {
        expect(error).to.be.instanceOf(TokenRefused);
        rechecked = (error as Error).message;
      }
      expect(rechecked, `${secondsLater} s after issue`).to.equal(verified);
    }
  });

  it('refuses expired, not-yet-valid, foreign-signed, none and wrong-algorithm tokens', async () => {
    const now = new Date('2026-12-02T18:00:00Z');
    const token = await issueApiToken({ subject: 'a', role: 'admin', tenant: 't', ttlSeconds: 60 }, key.privateKey, now);
    expect(await refusal(token, new Date(now.getTime() + 120_000))).to.equal('token refused: expired');
    expect(await refusal(token, new Date(now.getTime() - 120_000))).to.match(/^token refused: claim (nbf|iat) /);
    const foreign = await issueApiToken({ subject: 'a', role: 'admin', tenant: 't', ttlSeconds: 60 }, stranger.privateKey);
    expect(await refusal(foreign)).to.equal('token refused: bad signature');
    const none = new UnsecuredJWT({ role: 'admin', tenant: 't' }).setIssuer(TOKEN_ISSUER).setAudience(TOKEN_AUDIENCE).setSubject('a').setIssuedAt().setExpirationTime('1h').encode();
    expect(await refusal(none)).to.match(/^token refused: /);
    const hs = await new SignJWT({ role: 'admin', tenant: 't' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(TOKEN_ISSUER).setAudience(TOKEN_AUDIENCE).setSubject('a').setIssuedAt().setExpirationTime('1h').sign(new Uint8Array(32));
    expect(await refusal(hs)).to.equal('token refused: algorithm not allowed');
    expect(await refusal('not.a.token')).to.match(/^token refused: /);
  });

  it('refuses the signed token respelled: whitespace or padding in its signature (jose decodes it forgivingly)', async () => {
    const token = await issueApiToken({ subject: 'a', role: 'admin', tenant: 't', ttlSeconds: 600 }, key.privateKey);
    const [header, payload, signature = ''] = token.split('.');
    const respelled = [
      `${header}.${payload}.${signature.slice(0, 10)}\n${signature.slice(10)}`,
      `${header}.${payload}.${signature.slice(0, 10)} ${signature.slice(10)}`,
      `${header}.${payload}.${signature.slice(0, 10)}\t${signature.slice(10)}`,
      `${header}.${payload}.${signature}\r\n`,
      `${header}.${payload}.${signature}==`,
      ` ${token}`,
    ];
    for (const text of respelled) expect(await refusal(text), JSON.stringify(text.slice(-20))).to.equal('token refused: malformed');
    expect((await verifyApiToken(token, key.publicKey)).subject).to.equal('a');
  });

  it('refuses a token without a known role or a tenant, or for another issuer or audience', async () => {
    const sign = (claims: Record<string, unknown>, iss = TOKEN_ISSUER, aud = TOKEN_AUDIENCE): Promise<string> =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuer(iss).setAudience(aud).setSubject('a').setJti('id-1').setIssuedAt().setExpirationTime('1h').sign(key.privateKey);
    const withoutId = await new SignJWT({ role: 'viewer', tenant: 't' }).setProtectedHeader({ alg: 'ES256' }).setIssuer(TOKEN_ISSUER).setAudience(TOKEN_AUDIENCE).setSubject('a').setIssuedAt().setExpirationTime('1h').sign(key.privateKey);
    expect(await refusal(withoutId)).to.equal('token refused: claim jti missing');
    expect(await refusal(await sign({ role: 'root', tenant: 't' }))).to.equal('token refused: no valid role claim');
    expect(await refusal(await sign({ role: 'viewer' }))).to.equal('token refused: no tenant claim');
    expect(await refusal(await sign({ role: 'viewer', tenant: 't' }, 'someone-else'))).to.equal('token refused: claim iss check failed');
    expect(await refusal(await sign({ role: 'viewer', tenant: 't' }, TOKEN_ISSUER, 'other'))).to.equal('token refused: claim aud check failed');
  });

  it('refuses a token whose id is not a lower-case UUID: a revocation, stored in lower case, could not name it', async () => {
    const withId = (jti: string): Promise<string> =>
      new SignJWT({ role: 'admin', tenant: 't' }).setProtectedHeader({ alg: 'ES256' }).setIssuer(TOKEN_ISSUER).setAudience(TOKEN_AUDIENCE).setSubject('a').setJti(jti).setIssuedAt().setExpirationTime('1h').sign(key.privateKey);
    const upper = randomUUID().toUpperCase();
    for (const jti of [upper, `${randomUUID()} `, 'id-1', `{${randomUUID()}}`]) {
      expect(await refusal(await withId(jti)), jti).to.equal('token refused: token id is not a lower-case UUID');
    }
    expect((await verifyApiToken(await withId(upper.toLowerCase()), key.publicKey)).tokenId).to.equal(upper.toLowerCase());
  });

  it('a revoked token is refused; a revocation list that cannot be read refuses the token too', async () => {
    const token = await issueApiToken({ subject: 'alice', role: 'admin', tenant: 't', ttlSeconds: 600 }, key.privateKey);
    const asked: string[] = [];
    const revokedIds = new Set<string>();
    const isRevoked = (tokenId: string): Promise<boolean> => {
      asked.push(tokenId);
      return Promise.resolve(revokedIds.has(tokenId));
    };
    expect((await verifyApiToken(token, key.publicKey, { isRevoked })).subject).to.equal('alice');
    expect(asked).to.have.length(1);
    expect(asked[0]).to.match(/^[0-9a-f-]{36}$/);
    revokedIds.add(asked[0] as string);
    try {
      await verifyApiToken(token, key.publicKey, { isRevoked });
      expect.fail('a revoked token was accepted');
    } catch (error) {
      expect(error).to.be.instanceOf(TokenRefused);
      expect((error as Error).message).to.equal('token refused: revoked');
    }
    const unreadable = (): Promise<boolean> => Promise.reject(new Error('connection refused'));
    try {
      await verifyApiToken(await issueApiToken({ subject: 'bob', role: 'admin', tenant: 't', ttlSeconds: 600 }, key.privateKey), key.publicKey, { isRevoked: unreadable });
      expect.fail('a token was accepted without its revocation looked up');
    } catch (error) {
      expect((error as Error).message).to.equal('connection refused');
    }
  });

  it('roles: viewer reads, operator operates, only admin deletes; a token sees only its tenant', () => {
    const viewer: Principal = { kind: 'token', subject: 'v', tokenId: 'v', expiresAt: 0, role: 'viewer', tenant: 'a' };
    const operator: Principal = { kind: 'token', subject: 'o', tokenId: 'o', expiresAt: 0, role: 'operator', tenant: 'a' };
    const admin: Principal = { kind: 'token', subject: 'x', tokenId: 'x', expiresAt: 0, role: 'admin', tenant: 'a' };
    const cert: Principal = { kind: 'certificate', subject: 'CN=tenant' };
    expect([viewer, operator, admin, cert].map((p) => ['read', 'operate', 'delete'].map((perm) => principalAllows(p, perm as 'read')))).to.deep.equal([
      [true, false, false],
      [true, true, false],
      [true, true, true],
      [true, true, true],
    ]);
    expect(principalSeesTenant(viewer, 'a')).to.equal(true);
    expect(principalSeesTenant(viewer, 'b')).to.equal(false);
    expect(principalSeesTenant(cert, 'b')).to.equal(true);
  });

  it('ironlime token issue mints a token with the data dir key; bad options exit 2', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'ironlime-token-'));
    try {
      const { publicKey } = loadOrCreateTokenKey(dataDir);
      const issued = await runCli(['token', 'issue', '--role', 'operator', '--tenant', 'blue', '--ttl', '15m', '--subject', 'bob', '--data-dir', dataDir]);
      expect(issued.code).to.equal(0);
      const principal = await verifyApiToken(issued.stdout.trim(), publicKey);
      expect(principal).to.deep.equal({ kind: 'token', subject: 'bob', role: 'operator', tenant: 'blue', tokenId: String(decodeJwt(issued.stdout.trim()).jti), expiresAt: decodeJwt(issued.stdout.trim()).exp });
      expect(issued.stderr).to.equal(`token id (revoke it with DELETE /v2.x/tokens/<id>): ${String(decodeJwt(issued.stdout.trim()).jti)}\n`);
      const bad = await runCli(['token', 'issue', '--role', 'root', '--tenant', 'blue', '--data-dir', dataDir]);
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.equal('ironlime: --role: must be one of viewer, operator, admin\n');
      expect(parseTokenTtl('8h')).to.equal(28800);
      expect(() => parseTokenTtl('8 weeks')).to.throw(/--ttl: not a duration/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
