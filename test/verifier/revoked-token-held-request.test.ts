import { expect } from 'chai';
import { decodeJwt } from 'jose';
import { TokenRefused } from '../../lib/auth/api-token.js';
import { TokenRevocations } from '../../lib/auth/token-revocations.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { MINIMAL_REFSTATE } from '../helpers/refstate-fixture.js';
import { livenessBody, useTokenVerifier } from './helpers/token-verifier.js';

/**
 * The admin gate looks a bearer token's revocation up on the request's headers; the token may be
 * revoked before the body arrives (a request may take up to `requestMs`, 2 min by default). Every
 * change checks the revocation again in its own transaction: a request of a token revoked while its
 * body was held is refused 401 and changes nothing.
 */
describe('admin changes check that the bearer token is not revoked in their transaction, not only at the headers', function () {
  this.timeout(60_000);
  const v = useTokenVerifier();
  let revoker: string;

  before(async function () {
    revoker = await v.token('admin', 'tenant-a', 'security-officer');
  });

  async function revoke(token: string, by = revoker): Promise<number> {
    return (await v.call('DELETE', `/v2.3/tokens/${String(decodeJwt(token).jti)}`, by)).status;
  }

  it('refuses a policy create held across its token\'s revocation, and stores nothing', async function () {
    const leaked = await v.token('operator', 'tenant-a');
    const held = await v.heldCall('POST', '/v2.3/mbpolicies/planted', leaked, { mb_policy: MINIMAL_REFSTATE });
    expect(await revoke(leaked)).to.equal(204);
    const reply = await held.send();
    expect(reply.status, reply.body).to.equal(401);
    expect(reply.body).to.include('token refused: revoked');
    expect(await v.knex('verifier_mb_policies').where({ name: 'planted' }).first()).to.equal(undefined);
  });

  it('refuses a policy delete held across its token\'s revocation, and keeps the policy', async function () {
    const leaked = await v.token('admin', 'tenant-a');
    expect((await v.call('POST', '/v2.3/mbpolicies/kept', revoker, { mb_policy: MINIMAL_REFSTATE })).status).to.equal(201);
    const held = await v.heldCall('DELETE', '/v2.3/mbpolicies/kept', leaked, {});
    expect(await revoke(leaked)).to.equal(204);
    const reply = await held.send();
    expect(reply.status, reply.body).to.equal(401);
    expect(await v.knex('verifier_mb_policies').where({ name: 'kept' }).first('tenant')).to.deep.equal({ tenant: 'tenant-a' });
  });

  it('refuses a liveness enrolment held across its token\'s revocation, and enrols nothing', async function () {
    const leaked = await v.token('operator', 'tenant-a');
    const held = await v.heldCall('POST', '/v2.3/liveness/planted-node', leaked, livenessBody(v.verifier.caCert));
    expect(await revoke(leaked)).to.equal(204);
    const reply = await held.send();
    expect(reply.status, reply.body).to.equal(401);
    expect(await v.knex('verifier_liveness').where({ agent_id: 'planted-node' }).first()).to.equal(undefined);
  });

  it('still lets a token revoke itself, and refuses it from then on', async function () {
    const own = await v.token('admin', 'tenant-b');
    expect(await revoke(own, own)).to.equal(204);
    expect((await v.call('GET', '/v2.3/mbpolicies', own)).status).to.equal(401);
  });

  it('a revocation waits for a change already past its check to commit, and a change checked after it is refused', async function () {
    const revocations = new TokenRevocations(v.knex);
    let answered = false;
    let revoking: Promise<void> | undefined;
    await v.knex.transaction(async (trx) => {
      await revocations.refuseRevokedIn(trx, 'in-flight');
      revoking = revocations.revoke('in-flight', 'cert:test', noAuditRecord).then(() => {
        answered = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(answered, 'revocation answered while a change it must stop was uncommitted').to.equal(false);
    });
    await revoking;
    let refused: unknown;
    await v.knex.transaction((trx) => revocations.refuseRevokedIn(trx, 'in-flight')).catch((error: unknown) => (refused = error));
    expect(refused).to.be.instanceOf(TokenRefused);
  });
});
