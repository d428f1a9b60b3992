import { expect } from 'chai';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { startVerifier } from '../../lib/verifier/verifier-server.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { PUSH_SETTINGS, usePushVerifier } from './helpers/push-verifier.js';

/**
 * Shutdown while the silence sweep's FAIL cannot be stored (a trigger refuses every history row, as a
 * database that keeps refusing would): the sweep waits on the verdict writer's retries, and the
 * writer must stop retrying when the verifier closes, or close() waits for the database forever. The
 * FAIL is not taken as stored: the agent is failed again by the next sweep of any process.
 */
describe('push model: close() ends while the silence FAIL is being retried (real PostgreSQL)', function () {
  this.timeout(60_000);
  // The first instance never times anyone out: only the second one's sweep may.
  const push = usePushVerifier({ pushTimeout: 600 });

  it('resolves within seconds, and no FAIL row is stored', async function () {
    const second = await startVerifier(
      { dataDir: push.dir, ...PUSH_SETTINGS, instanceId: 'closing-sweeper' },
      { database: push.opened.database, inProcessForTests: true },
    );
    const knex = push.opened.database.knex;
    let triggered = false;
    try {
      // Only FAIL rows are refused, and from before the round: the second instance sweeps every 0.75 s, so
      // a host that stalls past its 3 s timeout between the round and a trigger made after it would see
      // the FAIL stored.
      await knex.raw(`create function refuse_history_rows() returns trigger language plpgsql as $$
        begin raise exception 'history rows refused by the test'; end $$`);
      await knex.raw("create trigger refuse_history_rows before insert on verifier_attestation_history for each row when (new.outcome = 'fail') execute function refuse_history_rows()");
      triggered = true;
      const node = await push.bootNode();
      await push.enrol(node);
      await node.agent.attestOnce();
      await pollUntil({ timeoutMs: 30_000, intervalMs: 50 }, 'the silence FAIL waiting to be stored', () => Promise.resolve(second.container.resolve(VerifierHealth).unstoredRounds > 0));
      const closed = await Promise.race([
        second.close().then(() => 'closed'),
        new Promise((resolve) => setTimeout(() => resolve('still closing after 20 s'), 20_000)),
      ]);
      expect(closed).to.equal('closed');
      expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass']);
    } finally {
      if (triggered) {
        await knex.raw('drop trigger refuse_history_rows on verifier_attestation_history');
        await knex.raw('drop function refuse_history_rows()');
      }
      await second.close().catch(() => undefined);
    }
  });
});
