import { expect } from 'chai';
import { TokenRevocations } from '../../lib/auth/token-revocations.js';
import { lockNodeId } from '../../lib/verifier/node-id-lock.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';

/**
 * An agent id whose node-id lock key, `hashtext('verifier-node-id:v0AK2AA')`, equals
 * `hashtext('api-token-revocations')` (858720089), the key the revocations lock once had: found by
 * trying 7-character ids. Any operator picks its agent ids, and the registrar's
 * `hashtext('registrar-host:<id>')` takes an unauthenticated agent's.
 */
const ID_HASHING_LIKE_THE_REVOCATION_LOCK = 'v0AK2AA';

/**
 * The revocations' lock must be apart from every lock a caller can name: an enrolment holding the
 * lock of a node id that hashes like it would hold back every revocation, and every token's change
 * of every tenant, until it ends.
 */
describe('the revocations lock is apart from the node-id and registrar locks', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;

  before(async function () {
    opened = await openMigratedTestSchema();
  });

  after(async function () {
    await opened?.dispose();
  });

  it('answers a revocation while an enrolment holds the lock of a node id hashing like the revocations lock', async function () {
    const knex = opened.database.knex;
    const [{ same }] = (await knex.raw("select hashtext(?) = hashtext('api-token-revocations') as same", [`verifier-node-id:${ID_HASHING_LIKE_THE_REVOCATION_LOCK}`])).rows as [{ same: boolean }];
    expect(same, 'the fixture id still collides').to.equal(true);
    const revocations = new TokenRevocations(knex);
    const enrolment = await knex.transaction();
    await lockNodeId(enrolment, ID_HASHING_LIKE_THE_REVOCATION_LOCK);
    const revoking = revocations.revoke('aa9b5f0e-6f0a-4c1b-9d65-2d1d4bfa7e11', 'cert:test', noAuditRecord);
    const answeredWhileHeld = await Promise.race([revoking.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000))]);
    await enrolment.rollback();
    await revoking;
    expect(answeredWhileHeld, 'the revocation waited for an enrolment of another node').to.equal(true);
  });
});
