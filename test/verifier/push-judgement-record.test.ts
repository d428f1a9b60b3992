import { expect } from 'chai';
import { pino } from 'pino';
import type { PushEngineOptions } from '../../lib/attestation/push-decision.js';
import { initialAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { turnsRevoked } from '../../lib/verifier/failure-announcer.js';
import { PolicyNotStored } from '../../lib/verifier/polled-agent.js';
import { PushJudgement, type Answer, type PushJudgementDeps } from '../../lib/verifier/push/push-judgement.js';
import type { AgentWithLatest, NewPushAttestation, PushAttestation } from '../../lib/verifier/push/push-repository.js';
import type { PushVerdictStore } from '../../lib/verifier/push/push-verdict-store.js';
import type { PushWriteOutcome } from '../../lib/verifier/push/push-verdict-writer.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';

/** What the judgement handed the verdict store. */
interface StoreCall {
  readonly record: VerifierAgentRecord;
  readonly state: AgentAttestationState;
  readonly expectedVersion: string;
  readonly history: unknown;
}

const AGENT = 'judged-agent';

function recordIn(operationalState: OperationalState, attestationCount: number): VerifierAgentRecord {
  const nowSeconds = Date.now() / 1000;
  return {
    agentId: AGENT,
    owner: 'me',
    enrolledAt: nowSeconds - 120,
    state: { ...initialAgentState(operationalState), lastReceivedQuote: nowSeconds - 2, attestationCount },
  } as unknown as VerifierAgentRecord;
}

const attestation = { agentId: AGENT, index: 7, stage: 'evaluating_evidence', challenge: 'Y2hhbGxlbmdl', choice: {} } as unknown as NewPushAttestation;

/** The store's answers in turn (an Error is thrown), with every call recorded; `closed`: its writer's close signal. */
function verdictStore(calls: StoreCall[], answers: (PushWriteOutcome | Error)[], closed = new AbortController().signal): PushVerdictStore {
  return {
    closed,
    store: (record: VerifierAgentRecord, state: AgentAttestationState, history: unknown, { expectedVersion }: { expectedVersion: string }) => {
      calls.push({ record, state, expectedVersion, history });
      const answer = answers.shift() ?? new Error('no more answers');
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
  } as unknown as PushVerdictStore;
}

function judgement(verdicts: PushVerdictStore, reRead: () => Promise<AgentWithLatest>, health = new VerifierHealth(), metrics?: PushJudgementDeps['metrics']): PushJudgement {
  const deps: PushJudgementDeps = {
    repository: {
      takeJudgedEvidence: () => Promise.resolve(new Set([AGENT])),
      giveBackEvidence: () => Promise.resolve(false),
    },
    verdicts,
    // A policy the agent names that is not stored: judged failing (internal.verifier.exception), no evidence needed.
    policies: { read: () => Promise.reject(new PolicyNotStored('runtime policy gone')) } as unknown as PushJudgementDeps['policies'],
    reRead,
    health,
    metrics,
    log: pino({ level: 'silent' }),
  };
  return new PushJudgement(deps, { owner: 'me', engine: { severityPolicy: compileSeverityPolicy() } as unknown as PushEngineOptions });
}

/**
 * Phase 2 hands `PushVerdictStore` the record its verdict was decided from, with that record's
 * version: the store stores only over that version, and stores a failure at once (`turnsRevoked`)
 * only when that record was not failed already. Passing a fresher read, or the decided state as both
 * sides, would store an agent's first failure a batch window late or over a row nobody judged.
 */
describe('push judgement: each verdict is stored from the record it was decided from', function () {
  it('judgeAndStore passes the judged record and its version, and the failure turns it failed', async function () {
    const judged = recordIn(OperationalState.GET_QUOTE, 4);
    const calls: StoreCall[] = [];
    const answer: Answer = { attestation, record: judged, agentVersion: 'v-judged', evidence: {} as Answer['evidence'], taken: false };
    const unexpectedRead = (): Promise<AgentWithLatest> => Promise.reject(new Error('not read again'));
    const stored = await judgement(verdictStore(calls, [{ stored: true, agentVersion: 'v-after' }]), unexpectedRead)
      .judgeAndStore(answer, new Date(), () => Promise.reject(new Error('not read back')));
    expect(calls).to.have.length(1);
    const [call] = calls as [StoreCall];
    expect(call.record).to.equal(judged);
    expect(call.expectedVersion).to.equal('v-judged');
    expect(call.state.operationalState).to.equal(OperationalState.FAILED);
    expect(turnsRevoked(call.record.state.operationalState, call.state.operationalState), 'stored at once').to.equal(true);
    expect(stored.record).to.equal(judged);
    expect(stored.agentVersion).to.equal('v-after');
  });

  it('failClosed passes the record it read again and that version, not the one first judged', async function () {
    const judged = recordIn(OperationalState.GET_QUOTE, 4);
    const reread = recordIn(OperationalState.GET_QUOTE, 5);
    const latest = { ...attestation, evaluation: null, failureReason: null } as unknown as PushAttestation;
    const calls: StoreCall[] = [];
    // The first write fails after the evidence was taken: the agent is failed from its row as it is now.
    const verdicts = verdictStore(calls, [new Error('connection terminated'), { stored: true, agentVersion: 'v-failed' }]);
    const answer: Answer = { attestation, record: judged, agentVersion: 'v-judged', evidence: {} as Answer['evidence'], taken: true };
    const stored = await judgement(verdicts, () => Promise.resolve({ record: reread, agentVersion: 'v-reread', latest }))
      .judgeAndStore(answer, new Date(), () => Promise.reject(new Error('not read back')));
    expect(calls).to.have.length(2);
    const failClosed = calls[1] as StoreCall;
    expect(failClosed.record).to.equal(reread);
    expect(failClosed.expectedVersion).to.equal('v-reread');
    expect(failClosed.state.operationalState).to.equal(OperationalState.FAILED);
    expect(failClosed.state.attestationCount, 'carried from the row read again').to.equal(reread.state.attestationCount);
    expect(turnsRevoked(failClosed.record.state.operationalState, failClosed.state.operationalState), 'stored at once').to.equal(true);
    expect(stored.record).to.equal(reread);
  });

  /** A verdict refused (the row changed) after its evidence was taken, then the row read by `reRead`: what judgeAndStore resolves or rejects with, and the store's calls. */
  async function refusedThenReRead(reRead: () => Promise<AgentWithLatest>, closed?: AbortSignal, health?: VerifierHealth, metrics?: PushJudgementDeps['metrics']): Promise<{ readonly calls: StoreCall[]; readonly outcome: Promise<unknown> }> {
    const calls: StoreCall[] = [];
    const verdicts = verdictStore(calls, [{ stored: false, reason: 'agent_changed' }, { stored: true, agentVersion: 'v-failed' }], closed);
    const answer: Answer = { attestation, record: recordIn(OperationalState.GET_QUOTE, 4), agentVersion: 'v-judged', evidence: {} as Answer['evidence'], taken: true };
    const outcome = judgement(verdicts, reRead, health, metrics).judgeAndStore(answer, new Date(), () => Promise.reject(new Error('not read back')));
    await outcome.catch(() => undefined);
    return { calls, outcome };
  }

  it('a re-read after a refused verdict is tried again while the database fails, not failed closed: the evidence is judged again from the row read, and stored on its version', async function () {
    const latest = { ...attestation, evaluation: null, failureReason: null } as unknown as PushAttestation;
    let reads = 0;
    const { calls, outcome } = await refusedThenReRead(() => {
      reads += 1;
      // judgedAgain's first three reads fail: the database away a moment.
      return reads <= 3 ? Promise.reject(new Error('Connection terminated unexpectedly')) : Promise.resolve({ record: recordIn(OperationalState.GET_QUOTE, 5), agentVersion: 'v-reread', latest });
    });
    expect(reads).to.equal(4);
    expect(calls.map((call) => call.expectedVersion)).to.deep.equal(['v-judged', 'v-reread']);
    const stored = (await outcome) as { verdict: { verdict: string; state: AgentAttestationState } };
    expect(stored.verdict.verdict).to.equal('fail');
    // The evidence's own verdict (its policy not stored), not failClosed's "verdict was not stored".
    expect(JSON.stringify(calls[1]?.history)).to.include('could not be judged').and.not.include('was not stored');
    expect(calls[1]?.state.attestationCount, 'judged from the row read again').to.equal(5);
  });

  it('while a re-read waits for the database, GET /health reads not ready; ready again once the row is read', async function () {
    const latest = { ...attestation, evaluation: null, failureReason: null } as unknown as PushAttestation;
    const health = new VerifierHealth();
    const problems: (string | undefined)[] = [];
    let reads = 0;
    const { outcome } = await refusedThenReRead(() => {
      reads += 1;
      problems.push(health.problem());
      return reads <= 2 ? Promise.reject(new Error('Connection terminated unexpectedly')) : Promise.resolve({ record: recordIn(OperationalState.GET_QUOTE, 5), agentVersion: 'v-reread', latest });
    }, undefined, health);
    await outcome;
    expect(problems[0], 'ready before the first read fails').to.equal(undefined);
    expect(problems.slice(1)).to.have.length(2);
    for (const problem of problems.slice(1)) expect(problem).to.match(/not stored: Connection terminated unexpectedly/);
    expect(health.problem(), 'ready once read').to.equal(undefined);
  });

  it('a re-read that fails with an error the database answered (a row that cannot be read) is not tried for ever: nothing stored, the error thrown (500), the verifier ready', async function () {
    const badRow = Object.assign(new Error('invalid input syntax for type json'), { code: '22P02' });
    const health = new VerifierHealth();
    let reads = 0;
    let givenUp = 0;
    // Before, the re-read was tried for ever: the PATCH held and /health 503 until shutdown (here: the test's timeout).
    const { calls, outcome } = await refusedThenReRead(() => {
      reads += 1;
      return Promise.reject(badRow);
    }, undefined, health, { verdictWaitGivenUp: () => (givenUp += 1) });
    expect(reads, "judgedAgain's read, then failClosed's").to.equal(2);
    expect(givenUp, 'each counted in /metrics').to.equal(2);
    expect(calls).to.have.length(1);
    let thrown: unknown;
    await outcome.catch((error: unknown) => (thrown = error));
    expect(thrown).to.equal(badRow);
    expect(health.problem()).to.equal(undefined);
  });

  it('once the verdict writer is closed (shutdown), a re-read that fails is tried no more: nothing stored, the error thrown', async function () {
    const closing = new AbortController();
    let reads = 0;
    const { calls, outcome } = await refusedThenReRead(() => {
      reads += 1;
      // Closed during the back-off after judgedAgain's second read: it ends the wait.
      if (reads === 2) setTimeout(() => closing.abort(), 10);
      return Promise.reject(new Error('Connection terminated unexpectedly'));
    }, closing.signal);
    expect(reads, "judgedAgain's two reads and one more once closed, then failClosed's one").to.equal(4);
    expect(calls).to.have.length(1);
    let thrown: unknown;
    await outcome.catch((error: unknown) => (thrown = error));
    expect(thrown).to.be.instanceOf(Error);
  });
});
