import { expect } from 'chai';
import type { Knex } from 'knex';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { startSingleAgentVerifier, type SingleAgentVerifier } from './helpers/single-agent-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

const AGENT = 'policy-gone-held-1';
const LEASE_SECONDS = 1;

/**
 * The FAIL (`internal.verifier.exception`) of an agent whose runtime policy is not stored is held on
 * its FIRST write: a statement trigger makes the round write wait for an advisory lock the test holds,
 * before it locks the agent's row. Meanwhile an operator reactivates the agent (a wake) and its lease
 * lapses. The held verdict is this agent's only store: the wake starts no second FAIL, the sweep does
 * not claim the lapsed lease back, and once the write goes through exactly one FAIL row is stored.
 */
describe('verifier pull loop: one store at a time for an agent whose FAIL write is held (real PostgreSQL)', function () {
  this.timeout(60_000);
  let fixture: SingleAgentVerifier;
  let knex: Knex;
  let holder: Knex.Transaction | undefined;
  let lockKey: number;
  const row = () => fixture.row();
  const put = (action: 'stop' | 'reactivate') => fixture.put(action);

  before(async function () {
    fixture = await startSingleAgentVerifier(AGENT, LEASE_SECONDS);
    knex = fixture.knex;
    // Unique per run: other tests share the database and its advisory locks.
    lockKey = Number.parseInt(fixture.schemaName.slice(-7), 16);
  });

  after(async function () {
    await holder?.rollback().catch(() => undefined);
    await fixture?.close();
  });

  async function heldWrites(): Promise<number> {
    const held = await knex.raw(
      `select count(*)::int as n from pg_stat_activity
       where wait_event_type = 'Lock' and wait_event = 'advisory' and query like '%jsonb_to_recordset%' and query like '%verifier_agents%'
         and datname = current_database() and backend_type = 'client backend'
         and pid in (select pid from pg_locks where locktype = 'advisory' and objid = ? and not granted)`,
      [lockKey],
    );
    return (held.rows[0] as { n: number }).n;
  }

  async function heartbeat(): Promise<string> {
    return String(((await knex('verifier_processes').first('heartbeat_at')) as { heartbeat_at: Date }).heartbeat_at.getTime());
  }

  it('starts no second FAIL on a wake and does not claim the lease back while the first is held', async function () {
    await eventually('an attestation', async () => (await row()).attestation_count >= 1);
    await knex.raw('alter table verifier_agents drop constraint verifier_agents_runtime_policy_name_foreign');
    await knex('verifier_runtime_policies').where({ name: (await row()).runtime_policy_name }).delete();
    await put('stop');
    await eventually('polling stopped', () => Promise.resolve(fixture.verifier.scheduler.size === 0));
    // Before any row is locked, so the operator's PUT and the sweep's claims are not held with it.
    await knex.raw(`create function hold_round_writes() returns trigger language plpgsql as $$
      begin
        if current_query() like '%jsonb_to_recordset%' then perform pg_advisory_xact_lock(${lockKey}); end if;
        return null;
      end $$`);
    await knex.raw('create trigger hold_round_writes before update on verifier_agents for each statement execute function hold_round_writes()');
    holder = await knex.transaction();
    await holder.raw('select pg_advisory_xact_lock(?)', [lockKey]);

    await put('reactivate');
    await eventually('the FAIL write held', async () => (await heldWrites()) === 1);
    await put('reactivate');
    await eventually('the lease to lapse', async () => (await row()).lease_lapsed);
    // Two heartbeats after the lapse: the sweep between them ran its claims after the lease lapsed.
    for (let sweeps = 0; sweeps < 2; sweeps += 1) {
      const seen = await heartbeat();
      await eventually('a lease sweep', async () => (await heartbeat()) !== seen);
    }
    expect((await row()).lease_lapsed, 'lease claimed back while the FAIL is held').to.equal(true);
    expect(await heldWrites(), 'round writes held').to.equal(1);

    await holder.commit();
    holder = undefined;
    await eventually('the FAIL stored', async () => (await row()).operational_state === OperationalState.FAILED);
    // Any second FAIL write would have been held alongside the first and go through now.
    await eventually('no round write held', async () => (await heldWrites()) === 0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const fails = (await knex('verifier_attestation_history').where({ agent_id: AGENT, outcome: 'fail' })) as { failures: { event_id: string }[] }[];
    expect(fails.map((f) => f.failures.map((failure) => failure.event_id))).to.deep.equal([['internal.verifier.exception']]);
  });
});
