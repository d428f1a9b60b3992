import { expect } from 'chai';
import { initialAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { pushSilenceDeadline } from '../../lib/attestation/push-failure-decision.js';
import { SlowHashGate } from '../../lib/verifier/push/slow-hash-gate.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import { SimulatedHashes, simulatedSilenceSweep } from './helpers/simulated-push-storm.js';

const turn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A storm longer than the busy time's excuse, on a simulated clock (the excuse's bound is over 375 s):
 * the verifier's real gate and silence sweep, with hashes of 1 s on 2 threads, a queue of 8 kept full
 * by hashes of agents whose deadlines lie an hour ahead (each place freed is taken in the same turn, as
 * in a rolling enrolment), and a healthy agent enrolled as it starts that tries every 20 s (its
 * `Retry-After`). In arrival order it was refused at every try, and the sweep failed it at its enrolment
 * + 2 × (timeout + grace) + grace + 375 s + the capped busy time (about 615 s here), though it never
 * stopped trying; by deadline its first try is admitted and it attests. An agent enrolled with it that
 * never tries is still failed at that bound.
 */
describe('push model: a healthy agent in a storm longer than the busy time\'s excuse (simulated clock)', function () {
  this.timeout(60_000);
  const TIMEOUT_S = 10;
  const GRACE_S = 60;
  const HASH_MS = 1_000;
  const RETRY_MS = 20_000;
  const STORM_MS = 1_500_000;

  it('is admitted ahead of the storm and never failed, while an agent that stopped is failed at its bound', async function () {
    let nowMs = Date.UTC(2026, 11, 7);
    const enrolledAt = nowMs / 1000;
    const gate = new SlowHashGate(2, 8, (TIMEOUT_S + GRACE_S) * 1000, () => nowMs);
    const hashes = new SimulatedHashes(() => nowMs, HASH_MS);
    const hash = hashes.hash;
    let storming = true;
    let stormHashes = 0;
    const stormHash = (): void => {
      void gate.run(hash, nowMs / 1000 + 3600).then(
        () => {
          stormHashes += 1;
          if (storming) stormHash();
        },
        () => undefined,
      );
    };
    for (let i = 0; i < gate.concurrency + gate.maxWaiting; i += 1) stormHash();

    let state: AgentAttestationState = initialAgentState(OperationalState.GET_QUOTE);
    // Enrolled with it, it never tries: the storm must not keep it from being failed at its bound.
    let stopped: AgentAttestationState = initialAgentState(OperationalState.GET_QUOTE);
    let stoppedFailedAt = 0;
    const record = (agentId: string): VerifierAgentRecord => ({ agentId, owner: 'me', enrolledAt, state: agentId === 'healthy' ? state : stopped }) as unknown as VerifierAgentRecord;
    const timing = { timeoutSeconds: TIMEOUT_S, firstAttestationGraceSeconds: GRACE_S };
    let tries = 0;
    let refusals = 0;
    let attested = false;
    let nextTry = nowMs;
    const sweep = simulatedSilenceSweep({
      repository: {
        silentAgents: () => Promise.resolve(['healthy', 'stopped'].filter((id) => record(id).state.operationalState !== OperationalState.FAILED)),
        agentWithVersion: (agentId: string) => Promise.resolve({ record: record(agentId), agentVersion: 'v' }),
        attestingAgentCount: () => Promise.resolve(20),
      },
      failed: (failing, failed) => {
        if (failing.agentId === 'healthy') state = failed;
        else [stopped, stoppedFailedAt] = [failed, nowMs];
      },
      gate,
      hashMs: HASH_MS,
      now: () => nowMs,
      timeoutSeconds: TIMEOUT_S,
      firstAttestationGraceSeconds: GRACE_S,
    });

    for (let step = 0; step * 100 < STORM_MS; step += 1) {
      nowMs += 100;
      hashes.finishDue();
      await turn();
      if (attested) {
        // A token earned: it attests every 2 s without another hash.
        if (step % 20 === 0) state = { ...state, lastReceivedQuote: nowMs / 1000 };
      } else if (nowMs >= nextTry && state.operationalState !== OperationalState.FAILED) {
        tries += 1;
        nextTry = Infinity;
        const deadline = pushSilenceDeadline(state, enrolledAt, timing) ?? Infinity;
        void gate.run(hash, deadline).then(
          () => {
            attested = true;
            state = { ...state, lastReceivedQuote: nowMs / 1000 };
          },
          () => {
            refusals += 1;
            nextTry = nowMs + RETRY_MS;
          },
        );
        await turn();
      }
      if (step % 25 === 0) await sweep.tick();
    }
    storming = false;
    await sweep.close();
    hashes.finishAll();

    expect(gate.busy(nowMs), 'the storm kept the gate refusing to its end').to.not.equal(undefined);
    expect(stormHashes, 'the storm kept the gate working').to.be.above(1_000);
    expect({ state: state.operationalState, attested, tries, refusals }).to.deep.equal({ state: OperationalState.GET_QUOTE, attested: true, tries: 1, refusals: 0 });
    // Its bound: 2 × (timeout + grace) + grace + 375 s + the busy time capped at 4 hashes × 20 agents ÷ 2 threads (40 s).
    expect(stopped.operationalState).to.equal(OperationalState.FAILED);
    expect(stoppedFailedAt / 1000 - enrolledAt).to.be.within(615, 615 + 2.5);
  });
});
