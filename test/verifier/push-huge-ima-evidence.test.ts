import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { AgentPolicies } from '../../lib/attestation/agent-policies.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { choosePushEvidence, decidePushEvidence, type PushChoice, type PushEvidenceInput } from '../../lib/attestation/push-decision.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { finish } from '../../lib/ima/stepwise.js';
import { judgeInSlices } from '../../lib/verifier/judge-in-slices.js';
import { watchEventLoopStalls } from '../helpers/event-loop-stalls.js';
import { policiesFor, runtimePolicyFor } from '../attestation/engine-fixtures.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { sha256Capabilities } from './helpers/push-capabilities.js';

/** ima-ng lines of the agent's first evidence: a log of some 30 MiB, a third of a second of replay or more in one go. */
const LINES = 200_000;
/** A stall the test allows the event loop while the evidence is judged in slices. */
const MAX_STALL_MS = 500;
const TAMPERED_PATH = '/usr/lib/huge/file-777.so';

/**
 * Issue 10/13: a push agent's evidence may hold a whole IMA log of tens of MiB (phase 2's body may be
 * 64 MiB). Judged in one go it held the verifier's event loop for seconds — every other agent's
 * request, the pull rounds, /health — so the push verifier judges it a slice at a time
 * (`decidePushEvidence` pauses between chunks of lines, `judgeInSlices` resumes it on later turns),
 * reaching the verdict it reaches in one go.
 */
describe('push evidence: a huge IMA log judged a slice at a time', function () {
  this.timeout(120_000);
  const agent = new FakeAgent();
  let input: (policies: AgentPolicies) => PushEvidenceInput;
  let clean: AgentPolicies;
  let tampered: AgentPolicies;

  before(function () {
    for (let i = 1; i < LINES; i += 1) agent.measure(`/usr/lib/huge/file-${i}.so`, `content ${i}`);
    const challenge = new Uint8Array(randomBytes(32));
    const pcr10 = agent.pcrs.get(10) as Uint8Array;
    const [message, signature, subjectData] = agent.quote(challenge, new Map([[10, pcr10]])).slice(1).split(':').map((part) => new Uint8Array(Buffer.from(part, 'base64'))) as [Uint8Array, Uint8Array, Uint8Array];
    const imaEntries = agent.imaLines.map((line) => `${line}\n`).join('');
    const state = initialAgentState(OperationalState.GET_QUOTE);
    // Each policy compiled once, as the verifier caches an agent's (a compiled policy is never modified
    // by a judgement): rebuilt for every judgement, the 200,000 paths cost the file most of its CPU.
    clean = policiesFor(agent);
    tampered = policiesFor(agent, { runtimePolicy: runtimePolicyFor(agent.imaLines, [TAMPERED_PATH]) });
    input = (policies) => {
      const chosen = choosePushEvidence(state, policies, agent.akTpm, sha256Capabilities({ uefiLog: undefined, imaLog: { entryCount: LINES } }));
      if (!chosen.ok) throw new Error(chosen.detail);
      const choice: PushChoice = chosen.choice;
      return {
        state,
        policies,
        choice,
        challenge,
        evidence: { message, signature, subjectData, uefiLog: undefined, imaEntries },
        now: Math.floor(Date.now() / 1000),
        options: { severityPolicy: compileSeverityPolicy() },
      };
    };
  });

  for (const [title, policies, verdict] of [
    ['passes a clean log', () => clean, 'pass'],
    ['fails a log with a file outside the runtime policy', () => tampered, 'fail'],
  ] as const) {
    it(`${title}, pausing between chunks of lines and never holding the event loop for long, as it does in one go`, async function () {
      const work = decidePushEvidence(input(policies()));
      let pauses = 0;
      let step = work.next();
      for (; step.done !== true; step = work.next()) pauses += 1;
      expect(pauses, 'pauses of the judging').to.be.above(100);
      expect(step.value.verdict).to.equal(verdict);

      const again = decidePushEvidence(input(policies()));
      // Other work's turns while it is judged: a 1 ms timer runs between slices, never inside one.
      let turns = 0;
      const ticker = setInterval(() => (turns += 1), 1);
      const watch = watchEventLoopStalls();
      const sliced = await judgeInSlices(again);
      const worstStallMs = watch.stop();
      clearInterval(ticker);
      expect(turns, 'timer turns while it was judged (none when judged in one go)').to.be.above(5);
      expect(worstStallMs, 'worst event-loop stall, ms').to.be.below(MAX_STALL_MS);
      expect(sliced.verdict).to.equal(verdict);
      expect(sliced.history).to.deep.equal(step.value.history);
      expect(sliced.state.ima).to.deep.equal(step.value.state.ima);
      if (verdict === 'fail') {
        expect(sliced.history.failures.map((failure) => failure.event_id)).to.include('ima.validation.ima-ng.not_in_allowlist');
      } else {
        expect(sliced.state.attestationCount).to.equal(1);
      }
    });
  }

  it('run to its end at once (finish), it reaches the same verdict', function () {
    expect(finish(decidePushEvidence(input(tampered))).verdict).to.equal('fail');
    expect(finish(decidePushEvidence(input(clean))).verdict).to.equal('pass');
  });
});
