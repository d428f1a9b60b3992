import { performance } from 'node:perf_hooks';
import { OperationalState } from '../attestation/operational-state.js';
import { decideInternalError, decideTerminated, type PullDecision } from '../attestation/pull-decision.js';
import type { FailureAnnouncer } from './failure-announcer.js';
import type { PolledAgent } from './polled-agent.js';
import { runPullRound } from './pull-round.js';
import type { PullSchedulerOptions } from './pull-scheduler.js';
import type { VerdictStore } from './verdict-store.js';
import type { VerifierAgentRecord } from './verifier-agent-record.js';
import { messageOf } from './error-message.js';

/** The scheduler's options the decisions read. */
export type RoundDeciderOptions = Pick<PullSchedulerOptions, 'metrics' | 'round' | 'clock' | 'log'>;

/** A round's decision and when it was taken (the next round is timed from it). */
export interface DecidedRound {
  readonly outcome: PullDecision;
  /** `performance.now()` at the decision: only ever compared with a later reading of the same clock. */
  readonly at: number;
}

/**
 * What an agent polled here comes to: its round, TERMINATED (taken as decided), or an internal error
 * (failed as `internal.verifier.exception`) — and the failure of an agent that cannot even be loaded.
 */
export class RoundDecider {
  constructor(
    private readonly options: RoundDeciderOptions,
    private readonly verdicts: VerdictStore,
    private readonly failures: FailureAnnouncer,
  ) {}

  /** Runs one round of an agent this process polls. */
  async decide(agent: PolledAgent): Promise<DecidedRound> {
    const id = agent.enrolment.agentId;
    agent.running = true;
    const startedAt = performance.now();
    this.options.metrics?.roundStarted(Math.max(0, startedAt - agent.dueAt) / 1000);
    let outcome: PullDecision;
    const position = { state: agent.state, retries: agent.retries };
    try {
      if (agent.state.operationalState === OperationalState.TERMINATED) {
        outcome = decideTerminated(position);
        agent.reconcileAfterRound = true;
      } else {
        outcome = await runPullRound(agent, this.options.round, () => this.options.clock.now());
      }
    } catch (error) {
      this.options.log.error({ err: error, agentId: id }, 'pull round failed with an internal error');
      outcome = decideInternalError(position, messageOf(error), this.options.round);
    }
    const at = performance.now();
    this.options.metrics?.roundDecided(outcome.history?.outcome ?? 'none', (at - startedAt) / 1000);
    return { outcome, at };
  }

  /**
   * An agent that cannot be loaded (`AgentLoad` unloadable: a policy it names is not stored, a stored
   * value no longer parses or compiles) cannot be judged, and will not be by itself: failed as a round
   * that throws (`internal.verifier.exception`), stored before it is announced — through the
   * `VerdictStore`, so a failed write is tried again with back-off, as a round's verdict is. FAILED is
   * not claimed again. Resolves to what the store answered: false tells the caller to re-read the row,
   * and so does `'failure_recorded'` (an operator stopped or deleted the agent meanwhile: the failure is
   * recorded and announced all the same, the row keeps the operator's state); `'refused'` when the
   * database refused this FAIL for its values, which nothing else can take the place of.
   */
  async failUnloadable(record: VerifierAgentRecord, error: unknown): Promise<boolean | 'failure_recorded' | 'refused' | undefined> {
    this.options.log.error({ err: error, agentId: record.agentId }, 'cannot poll agent: its stored enrolment does not load; failing it (internal.verifier.exception)');
    const outcome = decideInternalError({ state: record.state, retries: 0 }, messageOf(error), this.options.round);
    const revocation = this.failures.prepare(record, record.state.operationalState, outcome.state, outcome.history);
    const stored = await this.verdicts.store(record.agentId, outcome, { rowVersion: record.rowVersion }, performance.now(), revocation);
    if (stored === true || stored === 'failure_recorded') this.failures.stored(revocation);
    return stored;
  }
}
