import { decideTakeOver } from '../attestation/pull-decision.js';
import { DeadProcessWatch, watchPeriodMs } from './dead-process-watch.js';
import { decideShare } from './fair-share.js';
import type { PolledAgent } from './polled-agent.js';
import type { VerdictStore } from './verdict-store.js';
import type { VerifierAgentRecord } from './verifier-agent-record.js';
import type { PullSchedulerOptions } from './pull-scheduler.js';

/** Sweep period while this process holds less than its fair share (agents another process released are taken within it). */
const SHORT_SWEEP_MS = 1000;

/** How many agents one claim statement takes at most. */
const CLAIM_BATCH = 500;

/** The scheduler's options the sweep reads. */
export type LeaseSweeperOptions = Pick<
  PullSchedulerOptions,
  'repository' | 'processes' | 'health' | 'metrics' | 'verifierId' | 'owner' | 'leaseSeconds' | 'log' | 'lock' | 'round'
>;

/** What the sweep needs of the scheduler that owns it: its agents, and how it starts and stops polling one. */
export interface SweptAgents {
  readonly agents: ReadonlyMap<string, PolledAgent>;
  /** Whose verdicts wait to be stored. */
  readonly verdicts: VerdictStore;
  isClosed(): boolean;
  adopt(record: VerifierAgentRecord): Promise<void>;
  drop(agentId: string): void;
  /** Re-reads the agent's row and follows it, at once or after its round in flight (another process took it). */
  wake(agentId: string): void;
  /** Re-reads the agent's row and follows it (polled again while this process still owns it). */
  reconcile(agentId: string): Promise<void>;
  track(task: Promise<void>): void;
}

/**
 * The lease side of the pull loop: every `leaseSeconds / 3` it beats, renews this process's leases,
 * lets go of agents above its fair share and claims agents nobody holds — new enrolments by other
 * processes, or the agents of a process that died. On PostgreSQL the process holds its `ProcessLock`
 * from before its first beat, and a `DeadProcessWatch` beats every tick and runs a sweep at once when
 * another process of the verifier id dies, instead of waiting for its leases to lapse (not behind a
 * pooler, where no process holds a lock).
 */
export class LeaseSweeper {
  private sweepTimer: NodeJS.Timeout | undefined;
  /** The last sweep left this process below its fair share: sweep again soon, to take released agents quickly. */
  private belowShare = false;
  /** A sweep is running (one at a time). */
  private sweeping = false;
  /** `sweepSoon` was called during a sweep: the next one starts as soon as it ends. */
  private soon = false;
  /** A claim failed: it may have been stored with its answer lost, so the next sweep looks for what it took. */
  private claimUnknown = false;
  private watch: DeadProcessWatch | undefined;

  constructor(
    private readonly options: LeaseSweeperOptions,
    private readonly scheduler: SweptAgents,
  ) {}

  /**
   * Takes the process lock and beats with its key (before claiming anything, so no other process judges
   * this owner dead by a key an earlier run left), claims the agents this process may poll (after a
   * restart: every one it held) and starts the sweeps and the dead-process watch.
   */
  async start(): Promise<void> {
    const { repository, processes, owner, leaseSeconds, verifierId, lock } = this.options;
    this.sweeping = true;
    try {
      await lock?.take({ retaken: () => this.sweepSoon(), lost: () => this.beatWithoutLock() });
      await processes.beat(owner, verifierId, lock?.key ?? null);
      await this.takeOverEach(await repository.leases.reclaimOwn(verifierId, owner, leaseSeconds));
      await this.sweep();
    } finally {
      this.sweeping = false;
    }
    this.scheduleSweep();
    if (lock !== undefined && !lock.pooled) {
      this.watch = new DeadProcessWatch({
        processes,
        lock,
        verifierId,
        owner,
        periodMs: watchPeriodMs(this.options.round.quoteInterval),
        log: this.options.log,
        found: () => this.sweepSoon(),
        track: (task) => this.scheduler.track(task),
        isClosed: () => this.scheduler.isClosed(),
      });
      this.watch.start();
    }
  }

  /** Stops the next sweep and the dead-process watch (work in flight is tracked by the scheduler). */
  stop(): void {
    clearTimeout(this.sweepTimer);
    this.watch?.stop();
  }

  /**
   * A statement that gives this process agents (a claim, an enrolment, a reactivation) failed, and may
   * have been stored with its answer lost: sweeps now and takes up the agents recorded as this
   * process's that it does not poll (`takeBackUnknown`), at this sweep or, failing, at the next.
   */
  takeBackSoon(): void {
    this.claimUnknown = true;
    this.sweepSoon();
  }

  /** Sweeps now, or as soon as the sweep running ends (another process died; the lock was taken again). */
  sweepSoon(): void {
    if (this.scheduler.isClosed()) {
      return;
    }
    if (this.sweeping) {
      this.soon = true;
      return;
    }
    clearTimeout(this.sweepTimer);
    this.runSweep();
  }

  /**
   * The lock was lost: beat without a key at once (best effort; the watch beats again within a tick
   * anyway), so the others read this live process as judged by heartbeat and leases, not by its lock.
   */
  private beatWithoutLock(): void {
    const { processes, owner, verifierId, log } = this.options;
    if (this.scheduler.isClosed()) {
      return;
    }
    this.scheduler.track(
      processes.beat(owner, verifierId, null).catch((error: unknown) => {
        log.warn({ err: error }, 'could not beat without the lost process lock');
      }),
    );
  }

  private scheduleSweep(): void {
    if (this.scheduler.isClosed()) {
      return;
    }
    const delayMs = this.soon ? 0 : this.belowShare ? SHORT_SWEEP_MS : Math.max(200, (this.options.leaseSeconds * 1000) / 3);
    this.soon = false;
    this.sweepTimer = setTimeout(() => this.runSweep(), delayMs);
  }

  private runSweep(): void {
    this.sweeping = true;
    this.scheduler.track(
      this.sweep()
        .then(() => this.options.health.sweepSucceeded())
        .catch((error: unknown) => {
          this.options.health.sweepFailed(error);
          this.options.log.error({ err: error }, 'lease sweep failed');
        })
        .finally(() => {
          this.sweeping = false;
          this.scheduleSweep();
        }),
    );
  }

  /**
   * Beats, renews the leases of the agents whose last round is stored, re-reads those another process
   * took meanwhile (they are polled here no longer, nor counted), after a claim that failed takes up
   * what it may have claimed unseen (`takeBackUnknown`), lets go of the agents held above this
   * process's fair share (`decideShare`), then claims agents nobody holds, in batches, up to that
   * share. Owners dead by their lock count for nothing and lose their agents only while this process
   * holds its own lock (`ProcessLock.settledKey`).
   */
  private async sweep(): Promise<void> {
    const { repository, processes, owner, leaseSeconds, verifierId, lock } = this.options;
    const { agents, verdicts } = this.scheduler;
    await processes.beat(owner, verifierId, lock?.key ?? null);
    const judgeKey = lock?.settledKey ?? null;
    const stored = [...agents.keys()].filter((agentId) => !verdicts.isWaiting(agentId));
    await repository.leases.renewLeases(owner, leaseSeconds, stored);
    const taken = await repository.leases.notOwnedBy(owner, stored);
    for (const agentId of taken) {
      this.scheduler.wake(agentId);
    }
    if (taken.length > 0) {
      this.options.log.warn({ agents: taken.length }, 'agents polled here were taken by another process: polled here no longer');
    }
    if (this.claimUnknown) {
      // Cleared before, not after: a statement giving agents that fails meanwhile asks for the next sweep's.
      this.claimUnknown = false;
      try {
        await this.takeOverEach(await repository.leases.takeBackUnknown(verifierId, owner, leaseSeconds, [...agents.keys(), ...verdicts.waitingAgents()]));
      } catch (error) {
        this.claimUnknown = true;
        throw error;
      }
    }
    const share = decideShare(await processes.population(verifierId, leaseSeconds, judgeKey), agents.size - taken.length);
    if (share.release > 0) {
      await this.release(share.release);
    }
    let room = share.claim;
    this.belowShare = false;
    while (room > 0 && !this.scheduler.isClosed()) {
      const claimed = await this.claim(Math.min(CLAIM_BATCH, room), judgeKey);
      await this.takeOverEach(claimed);
      if (claimed.length < Math.min(CLAIM_BATCH, room)) {
        // Nothing free now, but another process holds more than its share: it lets go at its sweep.
        this.belowShare = true;
        return;
      }
      room -= claimed.length;
    }
  }

  /** `claimFree`; when it fails, the next sweep takes up whatever it may have claimed unseen (`takeBackUnknown`). */
  private async claim(limit: number, judgeKey: number | null): Promise<VerifierAgentRecord[]> {
    const { repository, owner, leaseSeconds, verifierId } = this.options;
    try {
      // Not the lapsed leases of agents whose verdict waits here: claiming renews the lease it must not hold.
      return await repository.leases.claimFree(verifierId, owner, leaseSeconds, limit, this.scheduler.verdicts.waitingAgents(), judgeKey);
    } catch (error) {
      this.claimUnknown = true;
      throw error;
    }
  }

  /**
   * Stops polling `count` idle agents (no round in flight, last round stored) and lets their leases
   * expire now: another live process claims them from their stored state at its next sweep.
   */
  private async release(count: number): Promise<void> {
    const { agents, verdicts } = this.scheduler;
    const idle = [...agents.values()].filter((agent) => !agent.running && !verdicts.isWaiting(agent.enrolment.agentId)).slice(0, count);
    const ids = idle.map((agent) => agent.enrolment.agentId);
    for (const id of ids) {
      this.scheduler.drop(id);
    }
    try {
      await this.options.repository.leases.releaseAgents(this.options.owner, ids);
    } catch (error) {
      // Still this process's, and no longer polled: read again and polled here, rather than left unpolled
      // until their leases lapse.
      for (const id of ids) this.scheduler.track(this.scheduler.reconcile(id));
      throw error;
    }
    this.options.log.info({ released: ids.length, polled: agents.size }, 'released agents above the fair share');
  }

  /**
   * `takeOver` for every claimed record, each whatever happens to the others: one that throws (its
   * TERMINATED row not deleted) must not leave the rest of the batch claimed here and unpolled until
   * their leases lapse. The first error is thrown afterwards, so the sweep counts as failed.
   */
  private async takeOverEach(records: readonly VerifierAgentRecord[]): Promise<void> {
    let failure: { readonly error: unknown } | undefined;
    for (const record of records) {
      try {
        await this.takeOver(record);
      } catch (error) {
        this.options.log.error({ err: error, agentId: record.agentId }, 'could not take a claimed agent over');
        failure ??= { error };
      }
    }
    if (failure !== undefined) throw failure.error;
  }

  /** A claimed agent this process does not poll yet: TERMINATED ones are deleted, others restart (Keylime: START). */
  private async takeOver(record: VerifierAgentRecord): Promise<void> {
    if (this.scheduler.agents.has(record.agentId)) {
      return;
    }
    const takeOver = decideTakeOver(record.state);
    if (takeOver.kind === 'delete') {
      await this.options.repository.delete(record.agentId);
      return;
    }
    this.options.log.info({ agentId: record.agentId, from: record.state.operationalState, nextImaEntry: record.state.ima.nextEntry }, 'taking agent over');
    this.options.metrics?.tookOver();
    await this.scheduler.adopt({ ...record, state: takeOver.state });
  }
}
