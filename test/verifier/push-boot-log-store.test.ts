import { expect } from 'chai';
import type { Knex } from 'knex';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { statementsOn } from '../../lib/db/fixed-statement.js';
import { PushBootLogStore, type EnrolledAgent } from '../../lib/verifier/push/push-boot-log-store.js';
import { forEachDatabase } from '../helpers/databases.js';
import { backendPid, blockedOnALock } from './helpers/blocked-on-a-lock.js';
import { enrolledAgent } from './helpers/enrolled-agent.js';
import { BOOT_LOG_AGENT as AGENT, bootLogRow, judged, LOG, REBOOTED, forgetPushBootLogs } from './helpers/push-boot-log-rows.js';

/** `verifier_push_boot_logs` through `PushBootLogStore`, on PostgreSQL and PGlite. */
forEachDatabase(
  'push boot log store',
  (fixture) => {
    let store: PushBootLogStore;
    let agent: EnrolledAgent;
    const knex = (): Knex => fixture.database.knex;
    const row = () => bootLogRow(knex());

    before(async function () {
      await seedVerifierAgents(knex(), 1, 0);
      agent = await enrolledAgent(knex(), AGENT);
      store = new PushBootLogStore(knex());
    });

    beforeEach(async function () {
      await knex()('verifier_push_boot_logs').delete();
      await knex()('verifier_push_attestations').delete();
    });

    it('writes after a passing attestation, reads back what it wrote, and writes once per boot and context', async function () {
      await judged(knex(), 0, 'pass');
      expect(await store.write(agent, 0, LOG)).to.equal('written');
      expect(await store.read(agent)).to.deep.equal(LOG);
      await judged(knex(), 1, 'pass');
      expect(await store.write(agent, 1, LOG), 'the same boot and context').to.equal('present');
      await judged(knex(), 2, 'pass');
      expect(await store.write(agent, 2, { ...LOG, contextSha256: 'b'.repeat(64) }), 'another context').to.equal('written');
      await judged(knex(), 3, 'pass');
      expect(await store.write(agent, 3, REBOOTED), 'another boot').to.equal('written');
      expect(await store.read(agent)).to.deep.equal(REBOOTED);
      expect(await knex()('verifier_push_boot_logs').select('agent_id'), 'one row per agent').to.have.length(1);
    });

    it('an older attestation\'s write does not replace the row written for a newer one (a slow process, a retry)', async function () {
      await judged(knex(), 0, 'pass');
      await judged(knex(), 1, 'pass');
      expect(await store.write(agent, 1, REBOOTED)).to.equal('written');
      expect(await store.write(agent, 0, LOG), 'the older boot, later').to.equal('refused');
      expect(await store.write(agent, 0, REBOOTED), 'the same boot, for an older attestation').to.equal('refused');
      expect(await store.read(agent)).to.deep.equal(REBOOTED);
      expect(await row()).to.deep.include({ attestation_index: 1 });
      expect(await store.write(agent, 1, REBOOTED), 'its own row').to.equal('present');
    });

    it('writes nothing for an attestation that did not pass, or after a later failure; a failure leaves a tombstone no older write replaces; deleting the agent deletes the row', async function () {
      await judged(knex(), 0, 'fail');
      expect(await store.write(agent, 0, LOG), 'failed').to.equal('refused');
      await judged(knex(), 1, 'pass');
      await judged(knex(), 2, 'fail');
      expect(await store.write(agent, 1, LOG), 'a later failure').to.equal('refused');
      await judged(knex(), 3, 'pass');
      expect(await store.write(agent, 3, LOG)).to.equal('written');
      await judged(knex(), 4, null);
      await knex().transaction((trx) => forgetPushBootLogs(statementsOn(trx, false), [AGENT, AGENT]));
      expect(await store.read(agent)).to.equal(undefined);
      expect(await row(), 'a tombstone at the latest attestation').to.deep.equal({ enrolment: agent.enrolment, attestation_index: 4, event_log: null });
      expect(await store.write(agent, 3, LOG), 'the pass before the failure').to.equal('refused');
      await knex()('verifier_push_attestations').where({ agent_id: AGENT, index: 4 }).update({ stage: 'verification_complete', evaluation: 'pass' });
      expect(await store.write(agent, 4, LOG), 'the attestation a silence outlived').to.equal('refused');
      await judged(knex(), 5, 'pass');
      expect(await store.write(agent, 5, LOG), 'a pass after the failure').to.equal('written');
      expect(await store.read(agent)).to.deep.equal(LOG);
      await knex()('verifier_agents').where({ agent_id: AGENT }).delete();
      expect(await row()).to.equal(undefined);
      await seedVerifierAgents(knex(), 1, 0);
      agent = await enrolledAgent(knex(), AGENT);
    });

    it('a failure of an agent whose row is already a tombstone at that attestation writes no new row version', async function () {
      const version = async () => ((await knex().raw(`select xmin::text as v from verifier_push_boot_logs where agent_id = ?`, [AGENT])) as { rows: { v: string }[] }).rows[0]?.v;
      const fail = () => knex().transaction((trx) => forgetPushBootLogs(statementsOn(trx, false), [AGENT]));
      await judged(knex(), 0, 'pass');
      expect(await store.write(agent, 0, LOG)).to.equal('written');
      const withLog = await version();
      await fail();
      const tombstone = await version();
      expect(tombstone, 'the log at the same attestation is tombstoned').to.not.equal(withLog);
      expect(await row()).to.deep.equal({ enrolment: agent.enrolment, attestation_index: 0, event_log: null });
      await fail();
      await fail();
      expect(await version(), 'repeated failures, no attestation between').to.equal(tombstone);
      await judged(knex(), 1, null);
      await fail();
      expect(await row(), 'a failure after a later attestation').to.deep.equal({ enrolment: agent.enrolment, attestation_index: 1, event_log: null });
    });

    for (const before of ['a stored log', 'no log yet'] as const) {
      it(`a pass's write racing a failure's transaction (${before}) waits for it and is refused: the log does not come back`, async function () {
        if (fixture.kind !== 'postgres') this.skip();
        await judged(knex(), 0, 'pass');
        if (before === 'a stored log') expect(await store.write(agent, 0, LOG)).to.equal('written');
        await judged(knex(), 1, null);
        const failing = await knex().transaction();
        let writing: Promise<string> | undefined;
        try {
          await failing('verifier_push_attestations').where({ agent_id: AGENT, index: 1 }).update({ stage: 'verification_complete', evaluation: 'fail' });
          await forgetPushBootLogs(statementsOn(failing, false), [AGENT]);
          // The write's snapshot predates the failure's commit: it sees attestation 0 passed and none failed after.
          writing = store.write(agent, 0, REBOOTED);
          await blockedOnALock(knex(), await backendPid(failing));
          await failing.commit();
        } finally {
          if (!failing.isCompleted()) await failing.rollback();
        }
        expect(await writing).to.equal('refused');
        expect(await store.read(agent)).to.equal(undefined);
        expect(await row()).to.deep.equal({ enrolment: agent.enrolment, attestation_index: 1, event_log: null });
      });
    }
  },
  { migrate: true },
);
