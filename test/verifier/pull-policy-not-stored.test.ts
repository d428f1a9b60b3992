import { expect } from 'chai';
import type { Knex } from 'knex';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { startSingleAgentVerifier, type SingleAgentVerifier } from './helpers/single-agent-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

const AGENT = 'policy-gone-1';
const LEASE_SECONDS = 1;

/**
 * An agent whose runtime policy row is gone (the foreign key dropped, the row deleted) is adopted
 * again (stop, then reactivate) while PostgreSQL refuses its history rows (a trigger): its FAIL
 * (`internal.verifier.exception`) cannot be stored. It must wait in memory and be written again with
 * back-off, as a round's verdict is, with `/health` not ready meanwhile; its lease must lapse and not
 * be claimed back by this process while the verdict waits; once the rows are accepted, the FAIL is
 * stored exactly once.
 */
describe('verifier pull loop: the FAIL of an agent whose policy is not stored is durable (real PostgreSQL)', function () {
  this.timeout(60_000);
  let fixture: SingleAgentVerifier;
  let knex: Knex;
  const row = () => fixture.row();
  const put = (action: 'stop' | 'reactivate') => fixture.put(action);
  const health = () => fixture.health();

  beforeEach(async function () {
    fixture = await startSingleAgentVerifier(AGENT, LEASE_SECONDS);
    knex = fixture.knex;
    await eventually('an attestation', async () => (await row()).attestation_count >= 1);
    const { runtime_policy_name: policyName } = await row();
    await knex.raw('alter table verifier_agents drop constraint verifier_agents_runtime_policy_name_foreign');
    await knex('verifier_runtime_policies').where({ name: policyName }).delete();
    await put('stop');
    await knex.raw(`create function refuse_history() returns trigger language plpgsql as $$
      begin raise exception 'history rows refused by the test'; end $$`);
    await knex.raw('create trigger refuse_history before insert on verifier_attestation_history for each row execute function refuse_history()');
    await put('reactivate');
  });

  afterEach(async function () {
    await fixture?.close();
  });

  async function acceptHistoryAndExpectOneFail(): Promise<void> {
    await knex.raw('drop trigger refuse_history on verifier_attestation_history');
    await eventually('the FAIL stored', async () => (await row()).operational_state === OperationalState.FAILED);
    const fails = (await knex('verifier_attestation_history').where({ agent_id: AGENT, outcome: 'fail' })) as { failures: { event_id: string }[] }[];
    expect(fails.map((f) => f.failures.map((failure) => failure.event_id))).to.deep.equal([['internal.verifier.exception']]);
    await eventually('the verifier ready again', async () => (await health()) === 200);
  }

  it('keeps the FAIL and writes it again with back-off, the verifier not ready meanwhile', async function () {
    await eventually('the verifier to say it is not ready', async () => (await health()) === 503);
    await acceptHistoryAndExpectOneFail();
  });

  it('does not claim back the lapsed lease of the agent whose FAIL waits', async function () {
    await eventually('the lease to lapse', async () => (await row()).lease_lapsed);
    // Two heartbeats after the lapse: the sweep between them ran its claims after the lease lapsed.
    const beat = async (): Promise<string> => String(((await knex('verifier_processes').first('heartbeat_at')) as { heartbeat_at: Date }).heartbeat_at.getTime());
    for (let sweeps = 0; sweeps < 2; sweeps += 1) {
      const seen = await beat();
      await eventually('a lease sweep', async () => (await beat()) !== seen);
    }
    expect((await row()).lease_lapsed).to.equal(true);
    expect(fixture.verifier.scheduler.size).to.equal(0);
    await acceptHistoryAndExpectOneFail();
  });
});
