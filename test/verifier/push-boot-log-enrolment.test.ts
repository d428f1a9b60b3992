import { expect } from 'chai';
import type { Knex } from 'knex';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { statementsOn } from '../../lib/db/fixed-statement.js';
import { PushBootLogStore, type EnrolledAgent } from '../../lib/verifier/push/push-boot-log-store.js';
import { PushRepository } from '../../lib/verifier/push/push-repository.js';
import { forEachDatabase } from '../helpers/databases.js';
import { backendPid, blockedOnALock } from './helpers/blocked-on-a-lock.js';
import { enrolledAgent } from './helpers/enrolled-agent.js';
import { BOOT_LOG_AGENT as AGENT, bootLogRow, judged, LOG as OLD_LOG, REBOOTED as NEW_LOG, forgetPushBootLogs } from './helpers/push-boot-log-rows.js';

/**
 * `verifier_push_boot_logs` across a delete and re-enrolment of the agent (docs/push.md "Eleventh
 * pass: the enrolment in the boot log's order"): the row is ordered by (enrolment, attestation index),
 * and the reads ignore a row of another enrolment. Each test starts from a fresh enrolment.
 */
forEachDatabase(
  'push boot log across re-enrolment',
  (fixture) => {
    let store: PushBootLogStore;
    const knex = (): Knex => fixture.database.knex;
    const row = () => bootLogRow(knex());
    /** What phase 1 reads with the agent's row: the boot time of the log stored for its enrolment. */
    const storedBootTime = async () => (await new PushRepository(knex()).agentWithLatest(AGENT))?.storedLogBootTime;

    before(function () {
      store = new PushBootLogStore(knex());
    });

    beforeEach(async function () {
      await knex()('verifier_agents').where({ agent_id: AGENT }).delete();
      await knex()('verifier_push_attestations').delete();
      await enrol(knex());
    });

    /** The agent enrolled (the bench's seed, with a running PCR 10 the agent's read accepts). */
    async function enrol(on: Knex): Promise<void> {
      await seedVerifierAgents(on, 1, 0);
      await on('verifier_agents').where({ agent_id: AGENT }).update({ ima_pcr10: JSON.stringify({ sha256: '0'.repeat(64) }) });
    }

    /** The old enrolment with its log stored at attestation 3 and its attestation 5 passed (its write of 5 still to come). */
    async function oldEnrolmentPassedAt5(): Promise<Awaited<ReturnType<typeof enrolledAgent>>> {
      const old = await enrolledAgent(knex(), AGENT);
      await judged(knex(), 3);
      expect(await store.write(old, 3, OLD_LOG)).to.equal('written');
      await judged(knex(), 5);
      return old;
    }

    /**
     * The old enrolment's write of its pass 5, sent while a delete and re-enrolment (and `alsoInIt`) is
     * open and committed once the write waits on its lock; resolves to the old agent and the write's outcome.
     */
    async function oldWriteAcrossReenrolment(alsoInIt: (deleting: Knex.Transaction) => Promise<void>): Promise<{ old: Awaited<ReturnType<typeof enrolledAgent>>; outcome: string }> {
      const old = await oldEnrolmentPassedAt5();
      const deleting = await knex().transaction();
      let writing: Promise<string> | undefined;
      try {
        await reenrol(deleting);
        await alsoInIt(deleting);
        writing = store.write(old, 5, OLD_LOG);
        await blockedOnALock(knex(), await backendPid(deleting));
        await deleting.commit();
      } finally {
        if (!deleting.isCompleted()) await deleting.rollback();
      }
      return { old, outcome: await writing };
    }

    /** `DELETE /agents/{id}` (the row, its attestations; the boot log goes by the foreign key), then the agent enrolled again. */
    async function reenrol(on: Knex): Promise<void> {
      await on('verifier_agents').where({ agent_id: AGENT }).delete();
      await on('verifier_push_attestations').where({ agent_id: AGENT }).delete();
      await enrol(on);
    }

    /** The old enrolment's row as a late write leaves it (see the race below): its log at a higher index than the new enrolment's. */
    async function landedOldRow(old: EnrolledAgent, index: number): Promise<void> {
      await knex()('verifier_push_boot_logs').insert({ agent_id: AGENT, enrolment: old.enrolment, attestation_index: index, boot_time: OLD_LOG.bootTime, hash_alg: OLD_LOG.hashAlg, mask: OLD_LOG.mask, context_sha256: OLD_LOG.contextSha256, event_log: OLD_LOG.eventLog });
    }

    it('a re-enrolment has a higher enrolment; the old enrolment\'s row is read as none and replaced by the new one\'s first write, whatever its index', async function () {
      const old = await enrolledAgent(knex(), AGENT);
      await reenrol(knex());
      const current = await enrolledAgent(knex(), AGENT);
      expect(BigInt(current.enrolment) > BigInt(old.enrolment)).to.equal(true);
      await landedOldRow(old, 5);
      expect(await store.read(current), 'the store\'s read').to.equal(undefined);
      expect(await storedBootTime(), 'phase 1\'s read with the agent\'s row').to.equal(undefined);
      await judged(knex(), 0);
      expect(await store.write(current, 0, NEW_LOG)).to.equal('written');
      expect(await row()).to.deep.equal({ enrolment: current.enrolment, attestation_index: 0, event_log: NEW_LOG.eventLog });
      expect(await store.read(current)).to.deep.equal(NEW_LOG);
      expect(await storedBootTime()).to.equal(NEW_LOG.bootTime);
    });

    it('a failure of the new enrolment tombstones the old enrolment\'s row at its own index, and its next pass is stored', async function () {
      const old = await enrolledAgent(knex(), AGENT);
      await reenrol(knex());
      const current = await enrolledAgent(knex(), AGENT);
      await landedOldRow(old, 5);
      await judged(knex(), 0);
      await knex().transaction((trx) => forgetPushBootLogs(statementsOn(trx, false), [AGENT]));
      expect(await row()).to.deep.equal({ enrolment: current.enrolment, attestation_index: 0, event_log: null });
      await judged(knex(), 1);
      expect(await store.write(current, 1, NEW_LOG)).to.equal('written');
      expect(await store.read(current)).to.deep.equal(NEW_LOG);
    });

    it('an old enrolment\'s write after the re-enrolment is refused, before the new enrolment stored anything or after, even of the boot and context the new row holds', async function () {
      const old = await enrolledAgent(knex(), AGENT);
      await reenrol(knex());
      const current = await enrolledAgent(knex(), AGENT);
      await judged(knex(), 0);
      expect(await store.write(old, 0, OLD_LOG), 'the new enrolment\'s attestation 0 passed, nothing stored').to.equal('refused');
      expect(await row()).to.equal(undefined);
      expect(await store.write(current, 0, NEW_LOG)).to.equal('written');
      await judged(knex(), 1);
      expect(await store.write(old, 1, OLD_LOG), 'another log').to.equal('refused');
      expect(await store.write(old, 1, NEW_LOG), 'the same boot and context').to.equal('refused');
      expect(await row()).to.deep.equal({ enrolment: current.enrolment, attestation_index: 0, event_log: NEW_LOG.eventLog });
    });

    it('a write of the old enrolment in flight across the delete and re-enrolment lands, and does not hold back the new enrolment\'s writes', async function () {
      if (fixture.kind !== 'postgres') this.skip();
      // The write's snapshot predates the re-enrolment's commit: the old agent, its pass 5. Its insert
      // waits on the row the delete removes, then finds none and the new agent for its foreign key.
      const { old, outcome } = await oldWriteAcrossReenrolment(async () => undefined);
      expect(outcome, 'the late write lands').to.equal('written');
      expect(await row()).to.deep.equal({ enrolment: old.enrolment, attestation_index: 5, event_log: OLD_LOG.eventLog });
      const current = await enrolledAgent(knex(), AGENT);
      expect(await store.read(current)).to.equal(undefined);
      expect(await storedBootTime()).to.equal(undefined);
      await judged(knex(), 0);
      expect(await store.write(current, 0, NEW_LOG), 'the new enrolment\'s first pass').to.equal('written');
      expect(await store.read(current)).to.deep.equal(NEW_LOG);
      expect(await storedBootTime()).to.equal(NEW_LOG.bootTime);
    });

    it('a write of the old enrolment in flight across the re-enrolment and the new enrolment\'s first write never replaces that row', async function () {
      if (fixture.kind !== 'postgres') this.skip();
      // The same snapshot as above; its upsert waits on the new enrolment's row, then finds it committed.
      const { outcome } = await oldWriteAcrossReenrolment(async (deleting) => {
        await judged(deleting, 0);
        const current = await enrolledAgent(deleting, AGENT);
        expect(await new PushBootLogStore(deleting).write(current, 0, NEW_LOG)).to.equal('written');
      });
      expect(outcome).to.equal('refused');
      const current = await enrolledAgent(knex(), AGENT);
      expect(await row()).to.deep.equal({ enrolment: current.enrolment, attestation_index: 0, event_log: NEW_LOG.eventLog });
      expect(await store.read(current)).to.deep.equal(NEW_LOG);
    });
  },
  { migrate: true },
);
