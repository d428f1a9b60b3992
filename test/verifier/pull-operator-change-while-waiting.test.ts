import { expect } from 'chai';
import type { Knex } from 'knex';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { startSingleAgentVerifier, type SingleAgentVerifier } from './helpers/single-agent-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

const AGENT = 'operator-wins-1';
/** Long enough that the agent is polled again by the loop re-reading it, not by a sweep claiming its lapsed lease. */
const LEASE_SECONDS = 30;

/**
 * An agent's runtime policy goes missing, so its reactivation is failed (`internal.verifier.exception`);
 * PostgreSQL refuses history rows (a trigger), so that FAIL waits in memory to be written again.
 * Meanwhile the operator puts the policy back and reactivates the agent. The waiting FAIL was decided
 * for the row as it was before: it must not be written over the operator's change. It is dropped, the
 * row read again at once, and the next round judges the agent as the operator left it (and passes).
 */
describe('verifier pull loop: an operator change beats a verdict waiting to be stored (real PostgreSQL)', function () {
  this.timeout(60_000);
  let fixture: SingleAgentVerifier;
  let knex: Knex;
  const row = () => fixture.row();
  const put = (action: 'stop' | 'reactivate') => fixture.put(action);
  const health = () => fixture.health();

  before(async function () {
    fixture = await startSingleAgentVerifier(AGENT, LEASE_SECONDS);
    knex = fixture.knex;
  });

  after(async function () {
    await fixture?.close();
  });

  it('drops the waiting FAIL and judges the agent as the operator left it', async function () {
    await eventually('an attestation', async () => (await row()).attestation_count >= 1);
    const { runtime_policy_name: policyName, attestation_count: attested } = await row();
    await knex.raw('alter table verifier_agents drop constraint verifier_agents_runtime_policy_name_foreign');
    await knex('verifier_runtime_policies').where({ name: policyName }).update({ name: `${policyName}-away` });
    await put('stop');
    await eventually('polling stopped', () => Promise.resolve(fixture.verifier.scheduler.size === 0));
    await knex.raw(`create function refuse_history() returns trigger language plpgsql as $$
      begin raise exception 'history rows refused by the test'; end $$`);
    await knex.raw('create trigger refuse_history before insert on verifier_attestation_history for each row execute function refuse_history()');
    await put('reactivate');
    await eventually('the FAIL waiting (verifier not ready)', async () => (await health()) === 503);

    await knex('verifier_runtime_policies').where({ name: `${policyName}-away` }).update({ name: policyName });
    await put('reactivate');
    await knex.raw('drop trigger refuse_history on verifier_attestation_history');
    await eventually('the waiting verdict settled', async () => (await health()) === 200);

    expect((await row()).operational_state).to.not.equal(OperationalState.FAILED);
    await eventually('attested again', async () => (await row()).attestation_count > attested, 5000);
    expect(await knex('verifier_attestation_history').where({ agent_id: AGENT, outcome: 'fail' })).to.deep.equal([]);
    const verdicts = (await knex('audit_records').where({ action: 'verdict', stream: AGENT }).select('details')) as { details: string }[];
    expect(verdicts.map((v) => (JSON.parse(v.details) as { outcome: string }).outcome)).to.not.include('fail');
  });
});
