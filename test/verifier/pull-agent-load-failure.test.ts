import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { VerifierPolicyRepository } from '../../lib/verifier/verifier-policy-repository.js';
import { startSingleAgentVerifier, type SingleAgentVerifier } from './helpers/single-agent-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

/**
 * An agent this process re-reads (`PullScheduler.reconcile` → `adopt`: an operator's wake, a store the
 * row refused) whose policies cannot be read for a while (a database error) is kept: its load is tried
 * again with back-off, `/health` not ready meanwhile, and it is polled again once the read works. One
 * whose stored enrolment no longer compiles is FAILED (`internal.verifier.exception`), not left unpolled.
 */
describe('verifier pull loop: an agent that cannot be loaded (real PostgreSQL)', function () {
  this.timeout(60_000);
  let running: SingleAgentVerifier | undefined;
  const findRuntime = VerifierPolicyRepository.prototype.findRuntime;
  const findAgent = VerifierAgentRepository.prototype.find;

  afterEach(async function () {
    VerifierPolicyRepository.prototype.findRuntime = findRuntime;
    VerifierAgentRepository.prototype.find = findAgent;
    await running?.close();
    running = undefined;
  });

  /** Policy reads fail until the returned function is called (the database is fine again). */
  function failPolicyReads(): { reads: () => number; restore: () => void } {
    let reads = 0;
    VerifierPolicyRepository.prototype.findRuntime = function () {
      reads += 1;
      return Promise.reject(new Error('Connection terminated unexpectedly'));
    };
    return { reads: () => reads, restore: () => (VerifierPolicyRepository.prototype.findRuntime = findRuntime) };
  }

  for (const trigger of ['wake', 'reactivate'] as const) {
    it(`after a ${trigger} whose policy reads fail, it is not ready, tries again, and polls the agent once they work`, async function () {
      running = await startSingleAgentVerifier(`load-failure-${trigger}`, 30);
      const r = running;
      await eventually('a first round stored', async () => (await r.row()).attestation_count >= 2);
      expect((await r.row()).operational_state).to.equal(OperationalState.GET_QUOTE);

      const failing = failPolicyReads();
      if (trigger === 'wake') r.verifier.scheduler.wake(`load-failure-${trigger}`);
      else await r.put('reactivate');
      await eventually('the verifier to say it is not ready', async () => (await r.health()) === 503);
      await eventually('the load tried again', async () => failing.reads() >= 2);
      expect(r.verifier.scheduler.size, 'not polled while it cannot be loaded').to.equal(0);
      failing.restore();

      const before = await r.row();
      await eventually('polled again', async () => r.verifier.scheduler.size === 1 && (await r.row()).attestation_count > before.attestation_count, 10_000);
      await eventually('the verifier ready again', async () => (await r.health()) === 200);
      expect((await r.row()).operational_state).to.equal(OperationalState.GET_QUOTE);
    });
  }

  // Before, /health read ready all along: the agent went unpolled, and unattested, unseen.
  it('after a wake whose re-read of the agent row fails, it is not ready, tries again, and polls the agent once the read works', async function () {
    const agentId = 'reread-failure';
    running = await startSingleAgentVerifier(agentId, 30);
    const r = running;
    await eventually('a first round stored', async () => (await r.row()).attestation_count >= 2);
    let reads = 0;
    VerifierAgentRepository.prototype.find = function () {
      reads += 1;
      return Promise.reject(new Error('Connection terminated unexpectedly'));
    };
    r.verifier.scheduler.wake(agentId);
    await eventually('the re-read tried again', async () => reads >= 2);
    expect(await r.health(), 'not ready while the row cannot be read').to.equal(503);
    VerifierAgentRepository.prototype.find = findAgent;
    const before = await r.row();
    await eventually('polled again', async () => r.verifier.scheduler.size === 1 && (await r.row()).attestation_count > before.attestation_count, 10_000);
    await eventually('the verifier ready again', async () => (await r.health()) === 200);
  });

  it('fails an agent whose stored enrolment no longer compiles (internal.verifier.exception)', async function () {
    const agentId = 'load-failure-compile';
    running = await startSingleAgentVerifier(agentId, 30);
    const r = running;
    await eventually('a first round stored', async () => (await r.row()).attestation_count >= 1);
    await r.knex('verifier_agents').where({ agent_id: agentId }).update({ tpm_policy: 'not a tpm_policy' });
    r.verifier.scheduler.wake(agentId);
    await eventually('FAILED', async () => (await r.row()).operational_state === OperationalState.FAILED, 10_000);
    const fail = (await r.knex('verifier_attestation_history').where({ agent_id: agentId, outcome: 'fail' }).first()) as { failures: { event_id: string }[] };
    expect(fail.failures.map((failure) => failure.event_id)).to.deep.equal(['internal.verifier.exception']);
    expect(await r.health()).to.equal(200);
  });
});
