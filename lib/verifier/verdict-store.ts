import { performance } from 'node:perf_hooks';
import type { AgentAttestationState } from '../attestation/agent-state.js';
import type { HistoryRow } from '../attestation/history-row.js';
import type { PreparedRevocation } from '../revocation/revocation-notifier.js';
import type { ExponentialBackoff } from '../timing/backoff.js';
import type { PullSchedulerOptions } from './pull-scheduler.js';
import { RoundRefused, RoundRetrier, STORED_UNSEEN } from './round-retrier.js';
import type { RoundWrite } from './round-writer.js';
import type { StoredRound } from './save-rounds.js';

/** The scheduler's options the store reads. */
export type VerdictStoreOptions = Pick<PullSchedulerOptions, 'repository' | 'writer' | 'health' | 'metrics' | 'verifierId' | 'owner' | 'leaseSeconds' | 'log'>;

/** A decided verdict of one agent: its next state and (unless nothing was judged) its history row. */
export interface Verdict {
  readonly state: AgentAttestationState;
  readonly history: HistoryRow | undefined;
}

/**
 * The version of an agent's row (`agentVersionSql`) the pull loop last read or stored, which its next
 * verdict is decided from; undefined once the loop cannot tell (its own write changed the row unseen).
 */
export interface KnownRowVersion {
  rowVersion: string | undefined;
}

/** Back-off of a verdict that could not be stored (or an agent row the loop could not re-read): 200 ms doubling to 2 s. */
export const STORE_RETRY: ExponentialBackoff = { initialDelayMs: 200, maxDelayMs: 2000 };

/**
 * One `store()` of an agent's verdict, and whoever waits for it to end: a second store of the agent,
 * which is rare, so the list (and the promise each waiter makes) exists only then, not for every round.
 */
interface StoreCall {
  waiters: (() => void)[] | undefined;
}

/**
 * The pull loop's durable verdicts: a verdict is stored before anything acts on it. A write that fails
 * (the database unreachable, the statement refused) keeps the verdict in memory, marks the verifier
 * not ready (`VerifierHealth`) and is tried again with back-off until it is stored — except a verdict
 * the database refuses for its values when written alone (`RoundRefused`), which is not tried again. From its first
 * write until it is stored or dropped, the agent is "waiting" here: its lease is neither renewed nor
 * claimed back, so that another process may take it over from its stored state, and this one does not
 * poll it from a state older than the verdict (a write that goes through renews the lease itself).
 * One store per agent at a time: a second one waits for the first and is not written.
 */
export class VerdictStore {
  /** The store of each agent whose verdict is being written or waits to be. */
  private readonly calls = new Map<string, StoreCall>();
  private readonly retrier: RoundRetrier;
  /** Closing: no verdict waits for a batch window any more. */
  private closed = false;

  constructor(private readonly options: VerdictStoreOptions) {
    const { repository: rounds, health, log, metrics } = options;
    this.retrier = new RoundRetrier({ rounds, backoff: STORE_RETRY, health, log, onWriteFailed: () => metrics?.writeFailed() });
  }

  /** Whether a verdict of `agentId` is being stored or waits to be. */
  isWaiting(agentId: string): boolean {
    return this.calls.has(agentId);
  }

  /** The agents whose verdict is being stored or waits to be. */
  waitingAgents(): string[] {
    return [...this.calls.keys()];
  }

  /**
   * Stores `verdict` of `agentId`, trying again with back-off while the write fails. Resolves true once
   * stored, false when the agent is no longer this owner's to write (taken over, stopped, deleted: the
   * caller re-reads it), `'failure_recorded'` when the verdict fails the agent and an operator stopped or
   * deleted it meanwhile (`recordedOverOperatorStop`: its history row and audit record are stored, the
   * row keeps the operator's state; the caller announces the failure and re-reads the row),
   * `'refused'` when the database refused the verdict for its values (`RoundRefused`: not stored, not
   * tried again; the caller fails the agent closed in its place), and undefined when a write failed after the store closed and the history does not hold its round: the
   * verdict is not stored, and whoever takes the agent over polls it from its stored row. A verdict
   * decided while the process closes is still written once. `row` is the version the verdict was
   * decided from; it is moved on to the version the stored write leaves; `decidedAt` (`performance.now()`)
   * is when the round was decided, which the next round is timed from and which is stored as the
   * round's time. While another
   * verdict of the agent is being stored, this one is not: it resolves false once that one has settled,
   * and the caller re-reads the row that store left.
   */
  async store(agentId: string, verdict: Verdict, row: KnownRowVersion, decidedAt = performance.now(), revocation?: PreparedRevocation): Promise<boolean | 'failure_recorded' | 'refused' | undefined> {
    const running = this.calls.get(agentId);
    if (running !== undefined) {
      this.options.log.warn({ agentId, outcome: verdict.history?.outcome ?? 'none' }, 'verdict not stored: another verdict of the agent is being stored; re-reading the agent after it');
      await new Promise<void>((resolve) => (running.waiters ??= []).push(resolve));
      return false;
    }
    const call: StoreCall = { waiters: undefined };
    this.calls.set(agentId, call);
    try {
      return await this.storeUntilSettled(agentId, verdict, row, decidedAt, revocation);
    } finally {
      // The entry is this call's own: a second store of the agent never makes or removes one.
      this.calls.delete(agentId);
      for (const wake of call.waiters ?? []) wake();
    }
  }

  /**
   * Ends every back-off (each waiting verdict is tried once more, and not again if that fails) and
   * sends the verdicts waiting for their batch window now, so a stopping process does not wait a window
   * for its rounds in flight. A verdict decided after this is still stored: alone, at once.
   */
  close(): void {
    this.closed = true;
    this.retrier.close();
    this.options.writer.flush();
  }

  /**
   * Writes the verdict (`RoundRetrier`: retried until stored, a lost COMMIT answer found by its round
   * id) only over the row version it was decided from (`row`), the first write as every retry: an
   * operator who changed the row since the round read it, or while the verdict was being written or
   * waited to be (reactivated it, enrolled it again), wins. The verdict is then dropped and the caller
   * re-reads the row at once, whose next round judges the agent as the operator left it — but over a
   * stop or delete, a verdict that fails the agent still has its failure recorded (`'failure_recorded'`,
   * `row` unchanged). Stored by an attempt whose answer was lost, the row version it left is not known:
   * `row` forgets it.
   */
  private async storeUntilSettled(agentId: string, verdict: Verdict, row: KnownRowVersion, decidedAt: number, revocation: PreparedRevocation | undefined): Promise<boolean | 'failure_recorded' | 'refused' | undefined> {
    const { writer, log, metrics, verifierId, owner, leaseSeconds } = this.options;
    const outcome = verdict.history?.outcome ?? 'none';
    const expectedVersion = row.rowVersion;
    if (expectedVersion === undefined) {
      log.warn({ agentId, outcome }, 'verdict dropped: the row version it was decided from is not known, so it may be older than an operator change; re-reading the agent');
      return false;
    }
    let retried = false;
    let stored: StoredRound | undefined | typeof STORED_UNSEEN;
    try {
      stored = await this.retrier.store({
        agentId,
        history: verdict.history,
        send: (roundId, retry) => {
          retried = retry;
          const write: RoundWrite = { agentId, verifierId, owner, leaseSeconds, state: verdict.state, history: verdict.history, roundId, expectedVersion, decidedAt, ...(revocation === undefined ? {} : { revocation }) };
          // A failure is stored (and so announced) at once, not after the batch window: failures are
          // rare, and detection should not wait for passes to share a transaction. Nor does anything
          // wait for the window once the process is stopping (`close`).
          return writer.writeReturningOutcome(write, retry || outcome === 'fail' || this.closed);
        },
        stored: (result) => result !== undefined,
      });
    } catch (error) {
      if (error instanceof RoundRefused) {
        log.error({ agentId, outcome, failures: verdict.history?.failures, reason: error.message }, 'verdict not stored: the database refused its values');
        return 'refused';
      }
      log.error({ err: error, agentId }, 'could not store the verdict before closing; it is not stored');
      return undefined;
    }
    if (stored === undefined) {
      metrics?.verdictNotStored();
      if (outcome === 'fail') {
        // Not recorded: the row is gone, another process holds it, an operator changed it otherwise
        // (reactivated, enrolled again), or it was stopped from another version than this verdict's, or
        // another FAIL was recorded over its stop. The failures go to the log, so the detection is not lost silently.
        log.error({ agentId, failures: verdict.history?.failures, state: verdict.state.operationalState }, 'FAIL verdict not recorded: the agent row was deleted, changed or stopped since the verdict\'s round read it, or taken over, before it was stored; re-reading the agent');
      } else if (retried) log.warn({ agentId, outcome }, 'verdict dropped: the agent row changed while the verdict waited to be stored; re-reading the agent');
      else log.info({ agentId, outcome }, 'verdict not stored: the agent row changed since its round read it, or is no longer ours to write; re-reading the agent');
      return false;
    }
    if (stored !== STORED_UNSEEN && stored.kind === 'failure_recorded') {
      log.warn({ agentId, keptState: stored.keptState }, 'FAIL verdict recorded over an operator stop or delete that landed while it waited: the agent keeps the operator state');
      return 'failure_recorded';
    }
    row.rowVersion = stored === STORED_UNSEEN ? undefined : stored.version;
    return true;
  }
}
