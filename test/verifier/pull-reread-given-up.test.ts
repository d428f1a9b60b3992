import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { startSingleAgentVerifier, type SingleAgentVerifier } from './helpers/single-agent-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

/**
 * The pull loop's re-read of an agent's row (`PullScheduler.reconcile`: after an operator's change, a
 * refused or moved verdict) tried every error again for ever, so a row that never reads cleanly held
 * `/health` at 503 for good. As push's re-read (`untilDatabaseAnswers`), only an error that is the
 * database's absence is tried again (test/verifier/pull-agent-load-failure.test.ts); any other is given
 * up: the agent is dropped (not polled here), its stored row left as it is, `/health` ready, and the give-up
 * counted on `/metrics` (`ironlime_verifier_pull_rereads_given_up_total`: before, nothing counted it).
 */
describe('verifier pull loop: a re-read that fails for another reason than the database\'s absence is given up (real PostgreSQL)', function () {
  this.timeout(60_000);
  let running: SingleAgentVerifier | undefined;
  const findAgent = VerifierAgentRepository.prototype.find;

  afterEach(async function () {
    VerifierAgentRepository.prototype.find = findAgent;
    await running?.close();
    running = undefined;
  });

  /** `ironlime_verifier_pull_rereads_given_up_total` as `/metrics` gives it. */
  async function rereadsGivenUp(r: SingleAgentVerifier): Promise<number> {
    const text = (await r.verifier.service.app.inject({ method: 'GET', url: '/metrics' })).body;
    const line = /^ironlime_verifier_pull_rereads_given_up_total (\d+)$/m.exec(text);
    expect(line, 'the counter is on /metrics').to.not.equal(null);
    return Number(line?.[1]);
  }

  it('is read once, the agent dropped and not polled, its row left as stored, /health ready, and counted on /metrics', async function () {
    const agentId = 'reread-given-up';
    running = await startSingleAgentVerifier(agentId, 30);
    const r = running;
    await eventually('a first round stored', async () => (await r.row()).attestation_count >= 2);
    expect(await rereadsGivenUp(r)).to.equal(0);
    let reads = 0;
    let refusal: unknown;
    // Every re-read meets a statement PostgreSQL refuses (division by zero, SQLSTATE 22012): the same at every try.
    VerifierAgentRepository.prototype.find = async function () {
      reads += 1;
      try {
        await r.knex.raw('select 1 / 0');
      } catch (error) {
        refusal = error;
        throw error;
      }
      throw new Error('select 1 / 0 answered');
    };
    r.verifier.scheduler.wake(agentId);
    await eventually('the re-read given up', async () => reads >= 1 && r.verifier.scheduler.size === 0);
    expect(refusal).to.include({ code: '22012' });
    const stored = await r.row();
    // Longer than the first back-off of a retried re-read (200 ms, at most 400 ms): a retry would have read again, /health 503.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(reads, 'not read again').to.equal(1);
    expect(await r.health()).to.equal(200);
    expect(r.verifier.scheduler.size, 'not polled here').to.equal(0);
    const after = await r.row();
    expect(after.operational_state).to.equal(OperationalState.GET_QUOTE);
    expect(after.attestation_count, 'no round ran since').to.equal(stored.attestation_count);
    expect(await rereadsGivenUp(r), 'one re-read given up').to.equal(1);
  });
});
