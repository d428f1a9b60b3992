import { expect } from 'chai';
import type { Knex } from 'knex';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { CommitReplyDropper } from './helpers/commit-reply-dropper.js';
import { startSingleAgentVerifier, type SingleAgentVerifier } from './helpers/single-agent-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

const AGENT = 'lost-commit-nonceless-1';

/**
 * A verdict that carries no quote nonce — here the `internal.verifier.exception` FAIL of an agent
 * whose runtime policy is not stored — loses the reply to its COMMIT (a proxy swallows it after the
 * server committed). The verifier writes it again only when the history does not hold its round id,
 * so it is stored once: one fail row, one audit verdict, and `attestation_count` still equal to the
 * agent's pass rows — and announced once. Without round ids the retry would still store nothing twice
 * (the row moved, so its version check drops it), but it would answer "not stored" and the stored
 * FAIL would never reach the revocation webhook.
 */
describe('verifier: a nonce-less verdict whose COMMIT reply is lost is stored once (real PostgreSQL)', function () {
  this.timeout(60_000);
  let proxy: CommitReplyDropper;
  let fixture: SingleAgentVerifier;
  let knex: Knex;
  const put = (action: 'stop' | 'reactivate') => fixture.put(action);
  const health = () => fixture.health();

  before(async function () {
    proxy = new CommitReplyDropper();
    await proxy.start();
    fixture = await startSingleAgentVerifier(AGENT, 3, proxy.port);
    knex = fixture.knex;
  });

  after(async function () {
    await fixture?.close();
    await proxy?.close();
  });

  it('writes the FAIL again only when its round id is not stored', async function () {
    const agentRow = async (): Promise<{ operational_state: number; attestation_count: number; runtime_policy_name: string }> =>
      (await knex('verifier_agents').where({ agent_id: AGENT }).first('operational_state', 'attestation_count', 'runtime_policy_name')) as never;
    await eventually('an attestation', async () => (await agentRow()).attestation_count >= 1);
    await knex.raw('alter table verifier_agents drop constraint verifier_agents_runtime_policy_name_foreign');
    await knex('verifier_runtime_policies').where({ name: (await agentRow()).runtime_policy_name }).delete();
    await put('stop');
    // Armed only once no round is in flight: the next round write is the FAIL's.
    await eventually('polling stopped', () => Promise.resolve(fixture.verifier.scheduler.size === 0));
    proxy.dropNextCommitReplyAfter('jsonb_to_recordset');
    await put('reactivate');

    await eventually('a COMMIT reply swallowed', () => Promise.resolve(proxy.dropped === 1));
    await eventually('the FAIL stored and the verifier ready', async () => (await agentRow()).operational_state === OperationalState.FAILED && (await health()) === 200);

    const history = (await knex('verifier_attestation_history').where({ agent_id: AGENT }).select('outcome', 'nonce', 'failures')) as {
      outcome: string;
      nonce: string | null;
      failures: { event_id: string }[];
    }[];
    const fails = history.filter((row) => row.outcome === 'fail');
    expect(fails.map((row) => [row.nonce, row.failures.map((failure) => failure.event_id)])).to.deep.equal([[null, ['internal.verifier.exception']]]);
    const verdicts = (await knex('audit_records').where({ action: 'verdict', stream: AGENT }).select('details')) as { details: string }[];
    const outcomes = verdicts.map((v) => (JSON.parse(v.details) as { outcome: string }).outcome);
    expect(outcomes.filter((outcome) => outcome === 'fail')).to.have.length(1);
    expect(outcomes).to.have.length(history.length);
    expect((await agentRow()).attestation_count).to.equal(history.filter((row) => row.outcome === 'pass').length);

    await eventually('the FAIL announced', () => Promise.resolve(fixture.announced.some((message) => message['agent_id'] === AGENT)), 5000);
    // A second announcement would be sent as soon as the first was.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const announced = fixture.announced.filter((message) => message['agent_id'] === AGENT);
    expect(announced.map((message) => [message['type'], message['event_id']])).to.deep.equal([['comm_error', 'internal.verifier.exception']]);
  });
});
