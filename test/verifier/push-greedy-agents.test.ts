import { expect } from 'chai';
import { initialAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { pushSilenceDeadline } from '../../lib/attestation/push-failure-decision.js';
import { SlowHashGate } from '../../lib/verifier/push/slow-hash-gate.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import { SimulatedHashes, simulatedSilenceSweep } from './helpers/simulated-push-storm.js';

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** One simulated push agent: its stored state, and what the test counts of it. */
interface SimulatedAgent {
  readonly id: string;
  readonly enrolledAt: number;
  state: AgentAttestationState;
  failedAt?: number;
  tries: number;
  refusals: number;
  attested: boolean;
  nextTry: number;
}

/**
 * Enrolled nodes that stopped attesting but still hold their TPMs ("greedy": enrolled 65 s before the
 * storm, never attested, so their silence deadline is 5 s into it) each prove a session every 4 s, the
 * 15 a minute the verifier allows an agent, and ask a hash for each: ten of them ask 2.5 hashes a
 * second of a gate that does 2 (hashes of 1 s on 2 threads, 8 waiting). Healthy agents that attested
 * just before it (deadline 10 s in; a verifier restart, so each needs one slow check of its token)
 * try from 1 s in, and every 20 s when refused. On a simulated clock, with the verifier's real gate and
 * silence sweep (timeout 10 s, grace 60 s). With every greedy hash ordered by its close deadline, the
 * healthy agents were refused at every try until the sweep failed them (about 487 s in), while the
 * greedy nodes, failed only at their own later bound, held the gate. One hash per agent by its
 * deadline: the healthy agents are admitted and never failed, and the greedy nodes are still failed at
 * their bound.
 */
describe('push model: nodes that stopped attesting and prove session after session (simulated clock)', function () {
  this.timeout(60_000);
  const TIMEOUT_S = 10;
  const GRACE_S = 60;
  const HASH_MS = 1_000;
  const GREEDY_EVERY_MS = 4_000;
  const RETRY_MS = 20_000;
  const ATTESTING = 16;
  const STORM_MS = 600_000;

  it('keeps healthy agents out of the gate no longer: they attest, and the greedy nodes are still failed at their bound', async function () {
    let nowMs = Date.UTC(2026, 11, 7);
    const startS = nowMs / 1000;
    const gate = new SlowHashGate(2, 8, (TIMEOUT_S + GRACE_S) * 1000, () => nowMs);
    const hashes = new SimulatedHashes(() => nowMs, HASH_MS);
    const hash = hashes.hash;
    const agent = (id: string, enrolledAt: number, lastReceivedQuote: number, nextTry: number): SimulatedAgent => ({
      id,
      enrolledAt,
      state: { ...initialAgentState(OperationalState.GET_QUOTE), lastReceivedQuote },
      tries: 0,
      refusals: 0,
      attested: false,
      nextTry,
    });
    const greedy = Array.from({ length: 10 }, (_, i) => agent(`greedy-${i}`, startS - 65, 0, nowMs + i * 400));
    const healthy = Array.from({ length: 6 }, (_, i) => agent(`healthy-${i}`, startS - 3600, startS, nowMs + 1_000 + i * 500));
    const agents = new Map([...greedy, ...healthy].map((a) => [a.id, a]));
    const record = (a: SimulatedAgent): VerifierAgentRecord => ({ agentId: a.id, owner: 'me', enrolledAt: a.enrolledAt, state: a.state }) as unknown as VerifierAgentRecord;
    const timing = { timeoutSeconds: TIMEOUT_S, firstAttestationGraceSeconds: GRACE_S };
    const ask = (a: SimulatedAgent, admitted: () => void, refused: () => void): void => {
      a.tries += 1;
      const deadline = pushSilenceDeadline(a.state, a.enrolledAt, timing) ?? Infinity;
      void gate.run(hash, deadline, undefined, a.id).then(admitted, () => {
        a.refusals += 1;
        refused();
      });
    };
    const sweep = simulatedSilenceSweep({
      repository: {
        silentAgents: () => Promise.resolve([...agents.values()].filter((a) => a.state.operationalState !== OperationalState.FAILED).map((a) => a.id)),
        agentWithVersion: (agentId: string) => Promise.resolve({ record: record(agents.get(agentId) as SimulatedAgent), agentVersion: 'v' }),
        attestingAgentCount: () => Promise.resolve(ATTESTING),
      },
      failed: (failing, failed) => {
        const a = agents.get(failing.agentId) as SimulatedAgent;
        [a.state, a.failedAt] = [failed, nowMs];
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
      // Failed or not, a greedy node keeps proving sessions: its proof is still checked, its hash still asked.
      for (const g of greedy.filter((a) => nowMs >= a.nextTry)) {
        g.nextTry += GREEDY_EVERY_MS;
        ask(g, () => undefined, () => undefined);
      }
      for (const h of healthy.filter((a) => a.state.operationalState !== OperationalState.FAILED)) {
        if (h.attested) {
          // Its token checked: it attests every 2 s without another hash.
          if (step % 20 === 0) h.state = { ...h.state, lastReceivedQuote: nowMs / 1000 };
        } else if (nowMs >= h.nextTry) {
          h.nextTry = Infinity;
          ask(
            h,
            () => {
              h.attested = true;
              h.state = { ...h.state, lastReceivedQuote: nowMs / 1000 };
            },
            () => {
              h.nextTry = nowMs + RETRY_MS;
            },
          );
        }
      }
      await turn();
      if (step % 25 === 0) await sweep.tick();
    }
    await sweep.close();
    hashes.finishAll();

    expect(gate.busy(nowMs)?.to, 'the greedy nodes kept the gate refusing to the end').to.equal(nowMs / 1000);
    const outcome = (a: SimulatedAgent) => ({ id: a.id, state: a.state.operationalState, attested: a.attested, refusedTwiceAtMost: a.refusals <= 2 });
    expect(healthy.map(outcome)).to.deep.equal(healthy.map((a) => ({ id: a.id, state: OperationalState.GET_QUOTE, attested: true, refusedTwiceAtMost: true })));
    // Their bound: enrolment + 2 × (timeout + grace) + grace + 375 s + the busy time capped at 4 hashes × 16 agents ÷ 2 threads (32 s).
    for (const g of greedy) {
      expect(g.state.operationalState, g.id).to.equal(OperationalState.FAILED);
      expect((g.failedAt ?? 0) / 1000 - g.enrolledAt, g.id).to.be.within(607, 607 + 2.5);
    }
  });
});
