import type { Logger } from 'pino';
import { recordedOverOperatorStop } from '../../attestation/failure-over-operator-stop.js';
import { turnsRevoked, type FailureAnnouncer } from '../failure-announcer.js';
import type { RoundWrite } from '../round-writer.js';
import type { VerifierAgentRecord } from '../verifier-agent-record.js';
import type { VerifierHealth } from '../verifier-health.js';
import type { VerifierMetrics } from '../verifier-metrics.js';
import type { JudgedEvidenceTake, PushRepository } from './push-repository.js';
import type { PushCompletion, PushVerdictWriter, PushWriteOutcome } from './push-verdict-writer.js';
import { untilDatabaseAnswers } from './until-database-answers.js';

/** What a verdict's write carries besides the state and the history row. */
export interface VerdictWriteOptions {
  readonly completion?: PushCompletion;
  readonly take?: JudgedEvidenceTake;
  /** `agentVersionSql` of the row the verdict was decided from: stored only while the row still has it. */
  readonly expectedVersion: string;
}

export interface PushVerdictStoreDeps {
  readonly repository: Pick<PushRepository, 'takeOwnership'>;
  readonly writer: PushVerdictWriter;
  /** Told of every stored verdict, so a push agent that turned failed is announced as a pull agent is. */
  readonly failures: FailureAnnouncer;
  /** Told while a take-over waits for the database (`untilDatabaseAnswers`): not ready meanwhile. */
  readonly health: Pick<VerifierHealth, 'writeFailed' | 'writeSettled'>;
  /** Counts a take-over given up on (`untilDatabaseAnswers`). */
  readonly metrics?: Pick<VerifierMetrics, 'verdictWaitGivenUp'> | undefined;
  readonly log: Logger;
}

/**
 * Where both push verdicts (phase 2's evidence, the silence sweep's failure) are stored: through the
 * round writer, conditional on the row they were decided from, and announced once stored.
 */
export class PushVerdictStore {
  constructor(
    private readonly deps: PushVerdictStoreDeps,
    private readonly settings: { readonly verifierId: string; readonly owner: string; readonly leaseSeconds: number },
  ) {}

  /** Aborted once the verdict writer is closed (shutdown): nothing more is stored. */
  get closed(): AbortSignal {
    return this.deps.writer.closed;
  }

  /**
   * The verdict through the round writer (the row is taken over first, while it still has
   * `expectedVersion`: the writer writes its owner's rows only), with the evidence take and the
   * attestation it completes, if any, in the same transaction, and only while the agent's row still
   * has `expectedVersion` — or, for a verdict failing the agent (`recordedOverOperatorStop`), an
   * operator stopped it since: its failure is recorded and announced, the row keeps the operator's
   * state (`SAVE_ROUNDS`). Resolves to whether it was stored: `agent_changed` when the row changed,
   * was deleted or is no longer push (the caller reads it again to tell which). The take-over is tried
   * again while the database fails, as the write is: before, its error failed the agent (phase 2's
   * `failClosed`, with the evidence taken), a healthy one too (test/verifier/push-database-cut-points.test.ts).
   */
  async store(
    record: VerifierAgentRecord,
    state: VerifierAgentRecord['state'],
    history: RoundWrite['history'],
    { completion, take, expectedVersion }: VerdictWriteOptions,
  ): Promise<PushWriteOutcome> {
    const { owner, leaseSeconds, verifierId } = this.settings;
    const decidedFrom = record.state.operationalState;
    const overStop = recordedOverOperatorStop(state, history, decidedFrom);
    if (record.owner !== owner && !(await this.takeOver(record.agentId, expectedVersion, overStop))) {
      // With its take still pending the evidence is not this request's: the caller reads it back (and
      // takes it, or is refused) rather than judge it again as taken.
      return { stored: false, reason: take === undefined ? 'agent_changed' : 'evidence_not_taken' };
    }
    const revocation = this.deps.failures.prepare(record, decidedFrom, state, history);
    const write: RoundWrite = { agentId: record.agentId, verifierId, owner, leaseSeconds, state, history, expectedVersion, decidedFrom, ...(revocation === undefined ? {} : { revocation }) };
    const outcome = await this.deps.writer.write(write, completion, take, turnsRevoked(decidedFrom, state.operationalState));
    if (outcome.stored) this.deps.failures.stored(revocation);
    return outcome;
  }

  /** `takeOwnership`, until the database answers (`untilDatabaseAnswers`); takes over again harmlessly after a COMMIT whose answer was lost. */
  private takeOver(agentId: string, expectedVersion: string, overStop: boolean): Promise<boolean> {
    const { owner, leaseSeconds } = this.settings;
    const { repository, health, metrics, log } = this.deps;
    return untilDatabaseAnswers(() => repository.takeOwnership(agentId, owner, leaseSeconds, expectedVersion, overStop), {
      agentId,
      closed: this.closed,
      health,
      metrics,
      log,
      what: "taking the push agent's row over for its verdict",
    });
  }
}
