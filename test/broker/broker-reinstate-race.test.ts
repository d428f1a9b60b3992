import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { RevocationStore } from '../../lib/broker/revocation-store.js';
import { forEachDatabase } from '../helpers/databases.js';
import type { KbsRefusedError } from '../../lib/kbs-client/kbs-client-errors.js';
import { refusal, startTestBroker, type TestBroker } from './helpers/broker-fixture.js';

/**
 * A reinstatement ends only the revocation in force when it began: a failure recorded while it runs
 * (after it read the row, before its update) stays in force. PostgreSQL: the new revocation is held
 * uncommitted on a second connection while the reinstatement's update waits for its row lock, then
 * committed. PGlite (one connection): the revocation is queued from the reinstatement's clock, the
 * instant between its read and its update.
 */
forEachDatabase('broker: a reinstatement never clears a revocation recorded while it ran', (fixture) => {
  let broker: TestBroker;

  before(async function () {
    this.timeout(30_000);
    broker = await startTestBroker({}, fixture.database);
  });

  after(async function () {
    await broker?.dispose();
  });

  const inForce = async (agentId: string): Promise<{ reason: string; reinstated_at: unknown }[]> =>
    fixture.database.knex('broker_revocations').where({ agent_id: agentId }).select('reason', 'reinstated_at');

  it('the revocation recorded meanwhile stays in force (admin route: 409 AdminConflict); a reinstatement begun after it ends it', async function () {
    this.timeout(30_000);
    const knex = fixture.database.knex;
    const revocations = new RevocationStore(knex);
    const agentId = randomUUID();
    await broker.admin.revoke(agentId, 'old failure');
    if (fixture.kind === 'postgres') {
      const trx = await knex.transaction();
      let reinstated: Promise<KbsRefusedError> | undefined;
      try {
        await new RevocationStore(trx).revoke(agentId, 2_000, 'new failure');
        const holder = ((await trx.raw('select pg_backend_pid() as pid')) as { rows: { pid: number }[] }).rows[0]?.pid ?? -1;
        reinstated = refusal(broker.admin.reinstate(agentId));
        // The reinstatement's update now waits for the row the uncommitted revocation holds.
        for (let waited = 0; ; waited += 1) {
          const blocked = (await knex.raw('select count(*)::int as n from pg_stat_activity where ? = any(pg_blocking_pids(pid))', [holder])) as { rows: { n: number }[] };
          if (blocked.rows[0]?.n === 1) break;
          expect(waited, 'the reinstatement reached the locked row').to.be.below(1_000);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        await trx.commit();
      } catch (error) {
        await trx.rollback();
        throw error;
      }
      const conflict = await reinstated;
      expect([conflict.remoteHttpStatus, conflict.kbsType, conflict.detail]).to.deep.equal([
        409,
        'AdminConflict',
        `node ${agentId} was revoked again during this reinstatement: it stays revoked`,
      ]);
    } else {
      let revoked: Promise<void> | undefined;
      const { outcome } = await revocations.recordReinstatement(agentId, () => {
        revoked = revocations.revoke(agentId, 2_000, 'new failure');
        return Date.now();
      });
      await revoked;
      expect(outcome).to.equal('revoked again');
    }
    expect(await inForce(agentId)).to.deep.equal([{ reason: 'new failure', reinstated_at: null }]);
    await broker.admin.reinstate(agentId);
    expect((await inForce(agentId))[0]?.reinstated_at).to.not.equal(null);
    const again = await refusal(broker.admin.reinstate(agentId));
    expect([again.remoteHttpStatus, again.kbsType], 'nothing in force: 404').to.deep.equal([404, 'InvalidRequestPath']);
  });
});
