import { expect } from 'chai';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { RoundWrite } from '../../lib/verifier/round-writer.js';
import { storeRounds, type StoredRound } from '../../lib/verifier/save-rounds.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { useMigratedTestSchema } from '../helpers/migrated-test-schema.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { bareVerdict } from './helpers/bare-verdict.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';
import { startSingleAgentVerifier, type SingleAgentVerifier } from './helpers/single-agent-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

/**
 * An operator stops (TENANT_FAILED) or deletes (TERMINATED) an agent while a verdict that fails it
 * waits to be stored. The FAIL is the evidence of a detected tampering: its history row, its signed
 * audit record and its revocation announcement are kept, once, while the agent keeps the operator's
 * state and is not polled again. A PASS meeting the stop is dropped, as before.
 */
describe('verifier pull loop: a FAIL waiting to be stored when an operator stops or deletes the agent (real PostgreSQL)', function () {
  this.timeout(60_000);

  describe('SAVE_ROUNDS, the stop committing while the statement waits for the row lock', function () {
    const db = useMigratedTestSchema();

    /** Enrols `agentId` polled by `me`, then stores `outcome`'s write over the version read while an operator's stop holds the row and commits. */
    async function storedDuringStop(agentId: string, outcome: OperationalState): Promise<Map<string, StoredRound>> {
      const agents = new VerifierAgentRepository(db.knex);
      await agents.insert(pullAgentEnrolment({ agentId, port: 9002, tpmPolicy: '{"mask": "0x400"}', akTpm: 'AAAA', mtlsCert: null, supportedVersion: '2.6' }), initialAgentState(OperationalState.GET_QUOTE), 'me', 600);
      const expectedVersion = await agentRowVersion(db.knex, agentId);
      const write: RoundWrite = { agentId, verifierId: 'default', owner: 'me', leaseSeconds: 30, ...bareVerdict(outcome, 0), roundId: `${agentId}-round`, expectedVersion };
      let stored: Promise<Map<string, StoredRound>> | undefined;
      await db.knex.transaction(async (trx) => {
        const pid = ((await trx.raw('select pg_backend_pid() as pid')) as { rows: { pid: number }[] }).rows[0]?.pid ?? 0;
        expect(await new VerifierAgentRepository(trx).stopByOperator(agentId, 'default', OperationalState.TENANT_FAILED)).to.equal(OperationalState.GET_QUOTE);
        stored = storeRounds(db.knex, [write]);
        await eventually('the write waiting for the stop', async () => {
          const rows = (await db.knex.raw(`select 1 from pg_stat_activity where ? = any(pg_blocking_pids(pid)) and query like '%jsonb_to_recordset%'`, [pid])) as { rows: unknown[] };
          return rows.rows.length > 0;
        }, 5000, 10);
      });
      return (await stored) as Map<string, StoredRound>;
    }

    it('records a FAIL over the stop: its history row, the row left as the operator left it', async function () {
      const agentId = 'fail-over-stop-statement';
      const stored = await storedDuringStop(agentId, OperationalState.FAILED);
      expect(stored.get(agentId)).to.deep.equal({ kind: 'failure_recorded', keptState: OperationalState.TENANT_FAILED });
      const row = (await db.knex('verifier_agents').where({ agent_id: agentId }).first('operational_state', 'attestation_count')) as { operational_state: number; attestation_count: number };
      expect(row).to.deep.equal({ operational_state: OperationalState.TENANT_FAILED, attestation_count: 0 });
      expect(await db.knex('verifier_attestation_history').where({ agent_id: agentId }).select('outcome', 'round_id')).to.deep.equal([{ outcome: 'fail', round_id: `${agentId}-round` }]);
    });

    it('drops a PASS over the stop', async function () {
      const agentId = 'pass-over-stop-statement';
      expect(await storedDuringStop(agentId, OperationalState.GET_QUOTE)).to.be.empty;
      expect(await db.knex('verifier_attestation_history').where({ agent_id: agentId }).select('outcome')).to.deep.equal([]);
    });
  });

  describe('the pull loop, the FAIL waiting for a write retry', function () {
    let fixture: SingleAgentVerifier | undefined;

    afterEach(async function () {
      await fixture?.close();
      fixture = undefined;
    });

    /** Starts a verifier polling `agentId`, then has its next round FAIL (a file the policy does not allow) while fail history rows are refused, so the FAIL waits to be written again. */
    async function failWaiting(agentId: string): Promise<SingleAgentVerifier> {
      const f = await startSingleAgentVerifier(agentId, 30);
      fixture = f;
      await eventually('an attestation', async () => (await f.row()).attestation_count >= 1);
      await f.knex.raw(`create function refuse_fail_history() returns trigger language plpgsql as $$
        begin raise exception 'fail history rows refused by the test'; end $$`);
      await f.knex.raw(`create trigger refuse_fail_history before insert on verifier_attestation_history for each row when (new.outcome = 'fail') execute function refuse_fail_history()`);
      f.fakeAgent.measure('/usr/bin/implant', 'not in the policy');
      await eventually('the FAIL waiting (verifier not ready)', async () => (await f.health()) === 503, 10_000);
      return f;
    }

    /** What the FAIL left: history rows, audit verdict records, announcements. */
    async function evidence(f: SingleAgentVerifier, agentId: string): Promise<{ fails: number; audited: string[]; announced: unknown[] }> {
      const fails = (await f.knex('verifier_attestation_history').where({ agent_id: agentId, outcome: 'fail' }).select('failures')) as { failures: unknown }[];
      const verdicts = (await f.knex('audit_records').where({ action: 'verdict', stream: agentId }).select('details')) as { details: string }[];
      const audited = verdicts.map((v) => (JSON.parse(v.details) as { outcome: string }).outcome).filter((outcome) => outcome === 'fail');
      return { fails: fails.length, audited, announced: f.announced.map((m) => [m['agent_id'], m['type'], m['event_id']]) };
    }

    it('records and announces the FAIL over an operator stop; the agent stays stopped and is not polled', async function () {
      const agentId = 'fail-over-stop-loop';
      const f = await failWaiting(agentId);
      await f.put('stop');
      await f.knex.raw('drop trigger refuse_fail_history on verifier_attestation_history');
      await eventually('the waiting FAIL settled', async () => (await f.health()) === 200, 10_000);
      await eventually('announced', () => Promise.resolve(f.announced.length >= 1), 5000);
      await new Promise((resolve) => setTimeout(resolve, 1000));

      const { fails, audited, announced } = await evidence(f, agentId);
      expect(fails, 'fail history rows').to.equal(1);
      expect(audited, 'audit verdict records').to.deep.equal(['fail']);
      expect(announced).to.have.length(1);
      expect(announced[0]).to.include.members([agentId, 'revocation']);
      expect((await f.row()).operational_state, 'the operator state kept').to.equal(OperationalState.TENANT_FAILED);
      expect(f.verifier.scheduler.size, 'not polled').to.equal(0);
    });

    it('records and announces the FAIL over an operator delete; the TERMINATED agent is deleted after it, its history kept', async function () {
      const agentId = 'fail-over-delete-loop';
      const f = await failWaiting(agentId);
      const reply = await f.verifier.service.app.inject({ method: 'DELETE', url: `/v2.6/agents/${agentId}` });
      expect(reply.statusCode, reply.body).to.equal(202);
      await f.knex.raw('drop trigger refuse_fail_history on verifier_attestation_history');
      await eventually('the agent deleted', async () => (await f.row()) === undefined, 10_000);
      await eventually('announced', () => Promise.resolve(f.announced.length >= 1), 5000);
      await new Promise((resolve) => setTimeout(resolve, 500));

      const { fails, audited, announced } = await evidence(f, agentId);
      expect(fails, 'fail history rows').to.equal(1);
      expect(audited, 'audit verdict records').to.deep.equal(['fail']);
      expect(announced).to.have.length(1);
      expect(f.verifier.scheduler.size, 'not polled').to.equal(0);
    });
  });
});
