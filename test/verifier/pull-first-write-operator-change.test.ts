import { expect } from 'chai';
import type { Knex } from 'knex';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { startSingleAgentVerifier, type SingleAgentVerifier } from './helpers/single-agent-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

const AGENT = 'first-write-operator-1';
/** Long enough that the agent is polled again by the loop re-reading it, not by a sweep claiming its lapsed lease. */
const LEASE_SECONDS = 30;

/** The agent's columns an operator's reactivation sets and a pull verdict writes. */
interface AgentColumns {
  readonly operational_state: number;
  readonly attestation_count: number;
  readonly severity_level: number | null;
  readonly owner: string;
  readonly verifier_id: string;
}

/**
 * The test holds the agent's row locked, so the next round's FIRST write (a pass, nothing failed
 * before it) waits on it in PostgreSQL; in the same transaction it reactivates the agent as the
 * admin route does (START, severity cleared) through the verifier's repository, and commits. The
 * round was decided from the row before the reactivation: its write must store nothing over the
 * operator's change (no history row, state and count as the operator left them), and the loop must
 * re-read the row at once (nobody wakes it here, as when the change came through another process)
 * and attest the agent again from there.
 */
describe('verifier pull loop: an operator change beats a verdict on its first write (real PostgreSQL)', function () {
  this.timeout(60_000);
  let fixture: SingleAgentVerifier;
  let knex: Knex;
  const columns = async (db: Knex | Knex.Transaction = knex): Promise<AgentColumns> =>
    (await db('verifier_agents').where({ agent_id: AGENT }).first('operational_state', 'attestation_count', 'severity_level', 'owner', 'verifier_id')) as AgentColumns;
  const historyCount = async (): Promise<number> => Number(((await knex('verifier_attestation_history').where({ agent_id: AGENT }).count('* as n')) as { n: string }[])[0]?.n);

  before(async function () {
    fixture = await startSingleAgentVerifier(AGENT, LEASE_SECONDS);
    knex = fixture.knex;
  });

  after(async function () {
    await fixture?.close();
  });

  it('stores nothing over a reactivation that lands while the first write waits, and re-reads the row', async function () {
    await eventually('attesting', async () => (await columns()).attestation_count >= 2);
    const trx = await knex.transaction();
    let writerPid: number;
    let before: AgentColumns;
    let historyBefore: number;
    try {
      const lockPid = ((await trx.raw('select pg_backend_pid() as pid')) as { rows: { pid: number }[] }).rows[0]?.pid ?? 0;
      before = (await trx('verifier_agents').where({ agent_id: AGENT }).forUpdate().first('operational_state', 'attestation_count', 'severity_level', 'owner', 'verifier_id')) as AgentColumns;
      expect(before.operational_state).to.equal(OperationalState.GET_QUOTE);
      historyBefore = Number(((await trx('verifier_attestation_history').where({ agent_id: AGENT }).count('* as n')) as { n: string }[])[0]?.n);
      let blocked: number | undefined;
      await eventually('the next round write waiting on the lock', async () => {
        const rows = (await knex.raw(`select pid from pg_stat_activity where ? = any(pg_blocking_pids(pid)) and query like '%jsonb_to_recordset%'`, [lockPid])) as { rows: { pid: number }[] };
        blocked = rows.rows[0]?.pid;
        return blocked !== undefined;
      }, 10_000, 10);
      writerPid = blocked as number;
      // `PUT /agents/{id}/reactivate`'s change, made while the verdict's first write is in flight.
      const reactivated = await new VerifierAgentRepository(trx).reactivate(AGENT, before.verifier_id, before.owner, LEASE_SECONDS);
      expect(reactivated).to.equal(OperationalState.GET_QUOTE);
      await trx.commit();
    } catch (error) {
      await trx.rollback();
      throw error;
    }

    // The held write's transaction ends; the loop's next write cannot come within its batch window (30 ms, a tenth of its 0.3 s interval).
    await eventually('the held write answered', async () => {
      const rows = (await knex.raw(`select state from pg_stat_activity where pid = ?`, [writerPid])) as { rows: { state: string }[] };
      return rows.rows[0]?.state !== 'active' && rows.rows[0]?.state !== 'idle in transaction';
    }, 10_000, 2);
    const after = await columns();
    expect(after.operational_state, 'the operator state kept').to.equal(OperationalState.START);
    expect(after.attestation_count, 'the verdict not stored').to.equal(before.attestation_count);
    expect(await historyCount(), 'no history row from the held write').to.equal(historyBefore);

    await eventually('attested again from the re-read row', async () => {
      const now = await columns();
      return now.operational_state === OperationalState.GET_QUOTE && now.attestation_count > before.attestation_count;
    }, 10_000, 20);
    const passes = await knex('verifier_attestation_history').where({ agent_id: AGENT, outcome: 'pass' }).count('* as n');
    expect(Number((passes as { n: string }[])[0]?.n)).to.equal((await columns()).attestation_count);
  });
});
