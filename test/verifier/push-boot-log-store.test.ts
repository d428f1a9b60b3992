import { expect } from 'chai';
import type { Knex } from 'knex';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import type { StoredPushBootLog } from '../../lib/attestation/push-boot-log.js';
import { statementsOn } from '../../lib/db/fixed-statement.js';
import { PushBootLogStore, forgetPushBootLogs } from '../../lib/verifier/push/push-boot-log-store.js';
import { forEachDatabase } from '../helpers/databases.js';

const AGENT = 'agent-000001';
const LOG: StoredPushBootLog = { bootTime: 1_700_000_000, hashAlg: 'sha256', mask: '0xffff', contextSha256: 'a'.repeat(64), eventLog: 'TE9H' };

/** `verifier_push_boot_logs` through `PushBootLogStore`, on PostgreSQL and PGlite. */
forEachDatabase(
  'push boot log store',
  (fixture) => {
    let store: PushBootLogStore;
    const knex = (): Knex => fixture.database.knex;

    before(async function () {
      await seedVerifierAgents(knex(), 1, 0);
      store = new PushBootLogStore(knex());
    });

    beforeEach(async function () {
      await knex()('verifier_push_boot_logs').delete();
      await knex()('verifier_push_attestations').delete();
    });

    async function judged(index: number, evaluation: 'pass' | 'fail'): Promise<void> {
      await knex()('verifier_push_attestations').insert({
        agent_id: AGENT, index, stage: 'verification_complete', evaluation, challenge: `c${index}`, choice: '{}', system_info: '{}',
        capabilities_received_at: new Date(), challenges_expire_at: new Date(),
      });
    }

    it('writes after a passing attestation, reads back what it wrote, and writes once per boot and context', async function () {
      await judged(0, 'pass');
      expect(await store.write(AGENT, 0, LOG)).to.equal('written');
      expect(await store.read(AGENT)).to.deep.equal(LOG);
      await judged(1, 'pass');
      expect(await store.write(AGENT, 1, LOG), 'the same boot and context').to.equal('present');
      expect(await store.write(AGENT, 1, { ...LOG, contextSha256: 'b'.repeat(64) }), 'another context').to.equal('written');
      expect(await store.write(AGENT, 1, { ...LOG, bootTime: LOG.bootTime + 60 }), 'another boot').to.equal('written');
      expect(await store.read(AGENT)).to.deep.equal({ ...LOG, bootTime: LOG.bootTime + 60 });
      expect(await knex()('verifier_push_boot_logs').select('agent_id'), 'one row per agent').to.have.length(1);
    });

    it('writes nothing for an attestation that did not pass, or after a later failure; a failure deletes it; so does deleting the agent', async function () {
      await judged(0, 'fail');
      expect(await store.write(AGENT, 0, LOG), 'failed').to.equal('refused');
      await judged(1, 'pass');
      await judged(2, 'fail');
      expect(await store.write(AGENT, 1, LOG), 'a later failure').to.equal('refused');
      await judged(3, 'pass');
      expect(await store.write(AGENT, 3, LOG)).to.equal('written');
      await knex().transaction((trx) => forgetPushBootLogs(statementsOn(trx, false), [AGENT]));
      expect(await store.read(AGENT)).to.equal(undefined);
      expect(await store.write(AGENT, 3, LOG)).to.equal('written');
      await knex()('verifier_agents').where({ agent_id: AGENT }).delete();
      expect(await store.read(AGENT)).to.equal(undefined);
    });
  },
  { migrate: true },
);
