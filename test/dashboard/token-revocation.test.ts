import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { decodeJwt, SignJWT } from 'jose';
import { TOKEN_AUDIENCE, TOKEN_ISSUER } from '../../lib/auth/api-token.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import knexFactory from 'knex';
import { TokenRevocations } from '../../lib/auth/token-revocations.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { startTestFleet, type TestFleet } from './fleet-fixture.js';

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

describe('verifier admin API: revoking a bearer token (DELETE /v2.x/tokens/{jti})', function () {
  this.timeout(120_000);
  let fleet: TestFleet;

  before(async function () {
    fleet = await startTestFleet(1, 0.5);
  });

  after(async function () {
    await fleet?.close();
  });

  it('an admin revokes a token: the admin API and the dashboard refuse it from then on; others keep working', async function () {
    const leaked = await fleet.token('operator', 'default');
    const other = await fleet.token('operator', 'default');
    const admin = await fleet.token('admin', 'tenant-b');
    expect((await fleet.call('GET', '/v2.3/agents', bearer(leaked))).status).to.equal(200);
    const cookie = { cookie: `__Host-ironlime_token=${leaked}` };
    expect((await fleet.call('GET', '/dashboard', cookie)).status).to.equal(200);

    const revoked = await fleet.call('DELETE', `/v2.3/tokens/${String(decodeJwt(leaked).jti)}`, bearer(admin));
    expect(revoked.status, revoked.body).to.equal(204);
    const refused = await fleet.call('GET', '/v2.3/agents', bearer(leaked));
    expect(refused.status).to.equal(401);
    expect(JSON.parse(refused.body).status).to.include('token refused: revoked');
    const page = await fleet.call('GET', '/dashboard', cookie);
    expect(page.status).to.equal(303);
    expect((await fleet.call('GET', '/v2.3/agents', bearer(other))).status).to.equal(200);
    // Revoking again is harmless.
    expect((await fleet.call('DELETE', `/v2.3/tokens/${String(decodeJwt(leaked).jti)}`, bearer(admin))).status).to.equal(204);
  });

  it('a token signed with the key but with an upper-case id is refused, so no token stays beyond revocation', async function () {
    const { privateKey } = loadOrCreateTokenKey(fleet.dataDir);
    const jti = randomUUID().toUpperCase();
    const odd = await new SignJWT({ role: 'operator', tenant: 'default' }).setProtectedHeader({ alg: 'ES256' }).setIssuer(TOKEN_ISSUER).setAudience(TOKEN_AUDIENCE).setSubject('odd').setJti(jti).setIssuedAt().setExpirationTime('1h').sign(privateKey);
    const admin = await fleet.token('admin', 'default');
    expect((await fleet.call('DELETE', `/v2.3/tokens/${jti}`, bearer(admin))).status).to.equal(204);
    const after = await fleet.call('GET', '/v2.3/agents', bearer(odd));
    expect(after.status, after.body).to.equal(401);
  });

  it('stores a revocation once, answers by id, and throws when its database cannot be read', async function () {
    const knex = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, searchPath: [fleet.schema], pool: { min: 0, max: 1 } });
    const revocations = new TokenRevocations(knex);
    expect(await revocations.isRevoked('a')).to.equal(false);
    await revocations.revoke('a', 'cert:ops', noAuditRecord);
    await revocations.revoke('a', 'cert:someone-else', noAuditRecord);
    expect(await revocations.isRevoked('a')).to.equal(true);
    expect(await knex('api_token_revocations').where({ jti: 'a' }).select('revoked_by')).to.deep.equal([{ revoked_by: 'cert:ops' }]);
    await knex.destroy();
    let thrown: unknown;
    await revocations.isRevoked('a').catch((error: unknown) => (thrown = error));
    expect(thrown).to.be.instanceOf(Error);
  });

  it('only an admin revokes, only a token id is taken, and the revocation is in the audit log', async function () {
    const target = String(decodeJwt(await fleet.token('viewer', 'default')).jti);
    const operator = await fleet.token('operator', 'default');
    expect((await fleet.call('DELETE', `/v2.3/tokens/${target}`, bearer(operator))).status).to.equal(403);
    expect((await fleet.call('DELETE', `/v2.3/tokens/${target}`)).status).to.equal(403);
    const bad = await fleet.call('DELETE', '/v2.3/tokens/not-a-token-id', bearer(await fleet.token('admin', 'default')));
    expect(bad.status).to.equal(400);
    expect(JSON.parse(bad.body).status).to.include('jti');
    const actions = (await fleet.admin.withSchema(fleet.schema).table('audit_records').where({ stream: 'fleet' }).select('actor', 'action')) as { actor: string; action: string }[];
    expect(actions.map((row) => `${row.actor} ${row.action}`)).to.include('token:admin-of-tenant-b (admin@tenant-b) DELETE /tokens/:jti');
  });
});
