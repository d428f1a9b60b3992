import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { RoundWriter } from '../../lib/verifier/round-writer.js';
import { VerifierPolicyRepository } from '../../lib/verifier/verifier-policy-repository.js';
import { startSingleAgentVerifier, type SingleAgentVerifier } from './helpers/single-agent-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

/**
 * A load of an agent (`AgentLoader.adopt`) whose policy read hangs, then fails, after something newer
 * took over the agent — a second adoption that loaded it, or an operator's stop that dropped it — is
 * stale: it neither marks the agent unloadable (/health 503), nor retries, nor adopts its old row.
 */
describe('verifier pull loop: a load overtaken by a newer adoption or a stop (real PostgreSQL)', function () {
  this.timeout(60_000);
  let running: SingleAgentVerifier | undefined;
  const findRuntime = VerifierPolicyRepository.prototype.findRuntime;
  const write = RoundWriter.prototype.writeReturningOutcome;

  afterEach(async function () {
    VerifierPolicyRepository.prototype.findRuntime = findRuntime;
    RoundWriter.prototype.writeReturningOutcome = write;
    await running?.close();
    running = undefined;
  });

  /** The first policy read from now on hangs until the returned function fails it; later reads work. */
  function hangFirstPolicyRead(): { reads: () => number; fail: () => void } {
    let reads = 0;
    let fail: (error: Error) => void = () => undefined;
    VerifierPolicyRepository.prototype.findRuntime = function (this: VerifierPolicyRepository, ...args) {
      reads += 1;
      if (reads === 1) return new Promise((_resolve, reject) => (fail = reject));
      return findRuntime.apply(this, args);
    };
    return { reads: () => reads, fail: () => fail(new Error('Connection terminated unexpectedly')) };
  }

  it('a load that fails after a newer one polls the agent leaves /health ready, even when its retry would land while a verdict is stored', async function () {
    const agentId = 'overtaken-load';
    running = await startSingleAgentVerifier(agentId, 30);
    const r = running;
    await eventually('a first round stored', async () => (await r.row()).attestation_count >= 2);

    const hung = hangFirstPolicyRead();
    r.verifier.scheduler.wake(agentId); // adoption A: its policy read hangs
    await eventually('A reading', async () => hung.reads() >= 1);
    r.verifier.scheduler.wake(agentId); // adoption B: loads the agent
    await eventually('polled by B', async () => r.verifier.scheduler.size === 1);

    // A slow commit: each verdict waits ~3 s to be stored, so a retry of A would find one waiting.
    RoundWriter.prototype.writeReturningOutcome = async function (this: RoundWriter, ...args) {
      await new Promise((resolve) => setTimeout(resolve, 3000));
      return write.apply(this, args);
    };
    const verdicts = (r.verifier.scheduler as unknown as { verdicts: { isWaiting(id: string): boolean } }).verdicts;
    await eventually('a verdict being stored', async () => verdicts.isWaiting(agentId), 10_000, 10);
    hung.fail(); // A fails: before the fix, the agent was marked unloadable and A's retry came 200 ms later
    await new Promise((resolve) => setTimeout(resolve, 1500));
    RoundWriter.prototype.writeReturningOutcome = write;

    const before = (await r.row()).attestation_count;
    await eventually('rounds stored again', async () => (await r.row()).attestation_count > before + 3, 15_000);
    expect(r.verifier.scheduler.size).to.equal(1);
    expect(await r.health(), '/health while the agent is polled').to.equal(200);
  });

  it('a load that fails after a newer one found the agent unloadable leaves /health ready while and after its FAIL is stored', async function () {
    const agentId = 'overtaken-load-unloadable';
    running = await startSingleAgentVerifier(agentId, 30);
    const r = running;
    await eventually('a first round stored', async () => (await r.row()).attestation_count >= 1);

    const hung = hangFirstPolicyRead();
    r.verifier.scheduler.wake(agentId); // adoption A: its policy read hangs
    await eventually('A reading', async () => hung.reads() >= 1);
    // A slow commit: the FAIL of adoption B waits ~3 s to be stored, so a retry of A would find it waiting.
    RoundWriter.prototype.writeReturningOutcome = async function (this: RoundWriter, ...args) {
      await new Promise((resolve) => setTimeout(resolve, 3000));
      return write.apply(this, args);
    };
    await r.knex('verifier_agents').where({ agent_id: agentId }).update({ tpm_policy: 'not a tpm_policy' });
    r.verifier.scheduler.wake(agentId); // adoption B: the enrolment does not compile, its FAIL is being stored
    const verdicts = (r.verifier.scheduler as unknown as { verdicts: { isWaiting(id: string): boolean } }).verdicts;
    await eventually('the FAIL being stored', async () => verdicts.isWaiting(agentId), 10_000, 10);
    hung.fail(); // A fails
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await r.health(), '/health while the FAIL is stored').to.equal(200);
    RoundWriter.prototype.writeReturningOutcome = write;

    await eventually('FAILED', async () => (await r.row()).operational_state === OperationalState.FAILED, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(r.verifier.scheduler.size).to.equal(0);
    expect(await r.health(), '/health once the FAIL is stored').to.equal(200);
  });

  it('a load in flight when the operator stops the agent is not retried nor adopted once it fails, and /health stays ready', async function () {
    const agentId = 'load-after-stop';
    running = await startSingleAgentVerifier(agentId, 30);
    const r = running;
    await eventually('a first round stored', async () => (await r.row()).attestation_count >= 2);

    const hung = hangFirstPolicyRead();
    r.verifier.scheduler.wake(agentId); // a re-read whose policy read hangs
    await eventually('reading', async () => hung.reads() >= 1);
    await r.put('stop');
    expect((await r.row()).operational_state).to.equal(OperationalState.TENANT_FAILED);
    const agents = (r.verifier.scheduler as unknown as { agents: Map<string, unknown> }).agents;
    let adopted = 0;
    const set = agents.set.bind(agents);
    agents.set = (key: string, value: unknown) => {
      adopted += 1;
      return set(key, value);
    };

    hung.fail();
    const healths = new Set<number>();
    for (let i = 0; i < 30; i += 1) {
      expect(r.verifier.scheduler.size, 'agents polled after the stop').to.equal(0);
      healths.add(await r.health());
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(adopted, 'the stopped agent adopted').to.equal(0);
    expect(hung.reads(), 'policy reads after the stop').to.equal(1);
    expect([...healths], '/health after the stop').to.deep.equal([200]);
  });
});
