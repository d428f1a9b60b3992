import { expect } from 'chai';
import type { Knex } from 'knex';
import { TokenRefused } from '../../lib/auth/api-token.js';
import { TokenRevocations } from '../../lib/auth/token-revocations.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';

/**
 * Longer than a revocation or a change takes here, with room for a CI host that stalls this process for
 * ~3 s, far shorter than the 30 s statement bound they would otherwise wait for.
 */
const PROMPT_MS = 10_000;
/** How long a revocation that must wait is watched not settling: nothing but the test ends what it waits for. */
const WATCHED_MS = 2000;

/** True when `work` settles within `ms`. */
async function settlesWithin(work: Promise<unknown>, ms = PROMPT_MS): Promise<boolean> {
  return Promise.race([work.then(() => true, () => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
}

/**
 * A revocation waits for the changes of the token it revokes that are past their check, and only for
 * those: a change that does not commit (a slow database, a paused process) holds back the revocations
 * of its own token, never another token's revocation or change (of any tenant).
 */
describe('a revocation waits only for the changes of the token it revokes', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let knex: Knex;
  let revocations: TokenRevocations;

  before(async function () {
    opened = await openMigratedTestSchema();
    knex = opened.database.knex;
    revocations = new TokenRevocations(knex);
  });

  after(async function () {
    await opened?.dispose();
  });

  it("answers another token's revocation, and lets a third token's change commit, while a change of one token hangs", async function () {
    const stuck = await knex.transaction();
    try {
      await revocations.refuseRevokedIn(stuck, 'stuck-token');
      const waiting = revocations.revoke('stuck-token', 'cert:test', noAuditRecord);
      expect(await settlesWithin(waiting, WATCHED_MS), 'the revocation of the stuck token waits for its change').to.equal(false);
      expect(await settlesWithin(revocations.revoke('other-token', 'cert:test', noAuditRecord)), "another token's revocation waited").to.equal(true);
      expect(await settlesWithin(knex.transaction((trx) => revocations.refuseRevokedIn(trx, 'third-token'))), "a third token's change waited").to.equal(true);
      await stuck.rollback();
      await waiting;
    } finally {
      if (!stuck.isCompleted()) await stuck.rollback();
    }
    let refused: unknown;
    await knex.transaction((trx) => revocations.refuseRevokedIn(trx, 'stuck-token')).catch((error: unknown) => (refused = error));
    expect(refused).to.be.instanceOf(TokenRefused);
  });

  it('lets two tokens revoke each other at once: one revocation is stored, the other refused 401, neither deadlocks', async function () {
    // Each revocation's record (as `changeRecord`) checks its own token, once both have started.
    let started = 0;
    const bothStarted = async (): Promise<void> => {
      started += 1;
      const until = Date.now() + 500;
      while (started < 2 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
    };
    const by = (revoker: string) => async (trx: Knex.Transaction): Promise<void> => {
      await bothStarted();
      await revocations.refuseRevokedIn(trx, revoker);
    };
    const outcomes = await Promise.allSettled([
      revocations.revoke('token-a', 'token-b', by('token-b'), 'token-b'),
      revocations.revoke('token-b', 'token-a', by('token-a'), 'token-a'),
    ]);
    const failures = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as unknown] : []));
    expect(failures.length, 'exactly one of them is refused').to.equal(1);
    expect(failures[0], String(failures[0])).to.be.instanceOf(TokenRefused);
  });
});
