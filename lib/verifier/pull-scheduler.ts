import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { OperationalState } from '../attestation/operational-state.js';
import { isTransientDatabaseError } from '../db/database-errors.js';
import { backoffDelayMs } from '../timing/backoff.js';
import type { PullSettings } from '../attestation/pull-decision.js';
import type { RevocationAgentTarget } from '../revocation/revocation-notice.js';
import type { RevocationNotifier } from '../revocation/revocation-notifier.js';
import { FailureAnnouncer } from './failure-announcer.js';
import { ConcurrencyLimiter } from '../timing/concurrency-limiter.js';
import { LeaseSweeper } from './lease-sweeper.js';
import { AgentLoader } from './agent-loader.js';
import type { PolledAgent, PolledAgentDeps } from './polled-agent.js';
import { POLICY_VERSION_CHECK_MS, PolicyVersionWatch } from './policy-version-watch.js';
import { RoundDecider, type DecidedRound } from './round-decider.js';
import { RoundPersister } from './round-persister.js';
import { pullRoundGrid } from './pull-round-grid.js';
import { ROUND_START_SLOT_MS, type RoundStartGrid } from './round-start-grid.js';
import type { VerifierAgentRecord } from './verifier-agent-record.js';
import type { VerifierAgentRepository } from './verifier-agent-repository.js';
import type { VerifierProcessRepository } from './verifier-process-repository.js';
import type { ProcessLock } from './process-lock.js';
import type { VerifierHealth } from './verifier-health.js';
import type { RoundWriter } from './round-writer.js';
import { STORE_RETRY, VerdictStore } from './verdict-store.js';
import type { VerifierMetrics } from './verifier-metrics.js';
import type { DatabaseClock } from '../db/database-clock.js';

export interface PullSchedulerOptions {
  readonly repository: VerifierAgentRepository;
  /** Heartbeats of the processes sharing the database: each claims only its fair share. */
  readonly processes: VerifierProcessRepository;
  /** This process's liveness signal on PostgreSQL (taken at start, released at close); absent on PGlite. */
  readonly lock?: ProcessLock | undefined;
  /** The hot-path write (batched). */
  readonly writer: RoundWriter;
  readonly health: VerifierHealth;
  /** Receives round, write and take-over events; absent in tests that do not look. */
  readonly metrics?: VerifierMetrics | undefined;
  readonly agentDeps: PolledAgentDeps;
  readonly round: PullSettings;
  /** The clock rounds stamp their times on: the database's, shared by every process (`DatabaseClock`). */
  readonly clock: Pick<DatabaseClock, 'now'>;
  readonly verifierId: string;
  /** This process's name in the `owner` column. */
  readonly owner: string;
  readonly leaseSeconds: number;
  readonly maxConcurrentRounds: number;
  readonly log: Logger;
  /** Told, once the verdict is stored, when an agent turns FAILED or INVALID_QUOTE; absent: nobody is told. */
  readonly revocation?: RevocationNotifier | undefined;
}

/** `PullScheduler.round`'s answer for an agent no longer polled here (one settled promise, shared). */
const NOT_POLLED: Promise<undefined> = Promise.resolve(undefined);

/** States the loop polls. */
const POLLED: readonly OperationalState[] = [
  OperationalState.START,
  OperationalState.GET_QUOTE,
  OperationalState.GET_QUOTE_RETRY,
  OperationalState.PROVIDE_V,
  OperationalState.PROVIDE_V_RETRY,
];

/**
 * The pull loop of one verifier process (spec §6). Each polled agent waits on a `RoundStartGrid` slot;
 * when it comes, the round runs through a shared `ConcurrencyLimiter`, so a thousand agents whose timers fire
 * together become at most `maxConcurrentRounds` requests in flight. A round reads nothing from the
 * database (the `PolledAgent` caches AK, policies, certificate and state) and writes once
 * (`saveRound`). Every `leaseSeconds / 3` the scheduler renews its leases and claims agents nobody
 * holds — new enrolments by other processes, or the agents of a process that died — so any number of
 * verifier processes can share one PostgreSQL; every 2 s one statement checks the stored versions of
 * the policies its agents use (`PolicyVersionWatch`), so a policy changed through another process is
 * used here too.
 */
export class PullScheduler {
  private readonly agents = new Map<string, PolledAgent>();
  private readonly limiter: ConcurrencyLimiter;
  private readonly inFlight = new Set<Promise<void>>();
  /** Where each polled agent's next round (or re-read) waits for its slot. */
  private readonly grid: RoundStartGrid;
  /** How much later than asked a full slot may push a round (`RoundStartGrid.at`). */
  private readonly roundSlackMs: number;
  /** Rounds a slot of the start grid takes now (metrics). */
  readonly slotCapacity: () => number;
  private closed = false;
  /**
   * Announces agents whose stored verdict failed them, to the webhooks and to the agents of the same
   * tenant polled here;
   * the push side of the same process announces through it too.
   */
  readonly failures: FailureAnnouncer;
  private readonly verdicts: VerdictStore;
  private readonly decider: RoundDecider;
  private readonly persister: RoundPersister;
  private readonly sweeper: LeaseSweeper;
  private readonly loader: AgentLoader;
  private readonly policyWatch: PolicyVersionWatch<PolledAgent>;

  constructor(private readonly options: PullSchedulerOptions) {
    this.limiter = new ConcurrencyLimiter(options.maxConcurrentRounds);
    ({ grid: this.grid, slackMs: this.roundSlackMs, capacity: this.slotCapacity } = pullRoundGrid({
      slotMs: ROUND_START_SLOT_MS,
      intervalMs: options.round.quoteInterval * 1000,
      agents: () => this.agents.size,
      started: (count) => options.metrics?.slotStarted(count),
    }));
    this.failures = new FailureAnnouncer(options.revocation, () => this.revocationTargets());
    this.verdicts = new VerdictStore(options);
    this.decider = new RoundDecider(options, this.verdicts, this.failures);
    this.persister = new RoundPersister(options, this.verdicts, this.failures, {
      schedule: (agent, seconds) => this.schedule(agent, seconds),
      reconcile: (agentId) => this.reconcile(agentId),
      drop: (agentId) => this.drop(agentId),
    });
    this.loader = new AgentLoader(options, {
      agents: this.agents,
      verdicts: this.verdicts,
      decider: this.decider,
      grid: this.grid,
      isClosed: () => this.closed,
      poll: (agent) => {
        this.agents.set(agent.enrolment.agentId, agent);
        this.schedule(agent, 0);
      },
      reconcile: (agentId) => this.reconcile(agentId),
      track: (task) => this.track(task),
    });
    this.sweeper = new LeaseSweeper(options, {
      agents: this.agents,
      verdicts: this.verdicts,
      isClosed: () => this.closed,
      adopt: (record) => this.adopt(record),
      drop: (agentId) => this.drop(agentId),
      wake: (agentId) => this.wake(agentId),
      reconcile: (agentId) => this.reconcile(agentId),
      track: (task) => this.track(task),
    });
    this.policyWatch = new PolicyVersionWatch({
      policies: options.agentDeps.policies,
      agents: () => this.agents.values(),
      reload: (agent) => {
        if (this.agents.get(agent.enrolment.agentId) === agent) this.wake(agent.enrolment.agentId);
      },
      periodMs: POLICY_VERSION_CHECK_MS,
      log: options.log,
      track: (task) => this.track(task),
      isClosed: () => this.closed,
    });
  }

  /** Agents this process polls now. */
  get size(): number {
    return this.agents.size;
  }

  /** The operational state of every agent polled here (metrics). */
  *agentStates(): Iterable<OperationalState> {
    for (const agent of this.agents.values()) {
      yield agent.state.operationalState;
    }
  }

  /** Rounds running and waiting for a slot. */
  get load(): { running: number; queued: number } {
    return { running: this.limiter.running, queued: this.limiter.queued };
  }

  /**
   * Claims the agents this process may poll (after a restart: every one it held), starts the sweeps and
   * the check of the stored policies' versions.
   */
  async start(): Promise<void> {
    await this.sweeper.start();
    this.policyWatch.start();
  }

  /** Starts polling an agent this process owns (enrolled, claimed, or re-read): `AgentLoader.adopt`. */
  adopt(record: VerifierAgentRecord): Promise<void> {
    return this.loader.adopt(record);
  }

  /**
   * An enrolment or a reactivation, which gives this process an agent to poll, failed: it may be stored
   * with only its answer lost, and nobody would poll the agent until its lease lapses (`LeaseSweeper.takeBackSoon`).
   */
  ownershipUnknown(): void {
    if (!this.closed) this.sweeper.takeBackSoon();
  }

  /**
   * An operator changed the agent's row (stop, delete, reactivate) or a policy it uses, or another
   * process took it: re-read it and act — at once, or after the round in flight.
   */
  wake(agentId: string): void {
    const agent = this.agents.get(agentId);
    if (agent?.running === true) {
      agent.reconcileAfterRound = true;
      return;
    }
    if (agent !== undefined) {
      this.grid.cancel(agent.timer);
      agent.timer = undefined;
    }
    this.track(this.reconcile(agentId));
  }

  /**
   * Stops every timer, stores waiting verdicts without their batch window, waits for rounds in flight,
   * lets this process's leases expire now, then releases its process lock.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.sweeper.stop();
    this.policyWatch.stop();
    this.verdicts.close();
    // Every waiting round goes, a re-read's back-off for an agent no longer here too.
    this.grid.close();
    for (const agent of this.agents.values()) {
      agent.timer = undefined;
    }
    while (this.inFlight.size > 0) {
      await Promise.allSettled([...this.inFlight]);
    }
    for (const agent of this.agents.values()) {
      agent.connection.close();
    }
    this.agents.clear();
    await this.options.repository.leases.releaseLeases(this.options.owner).catch((error: unknown) => {
      this.options.log.warn({ err: error }, 'could not release leases');
    });
    await this.options.processes.remove(this.options.owner).catch((error: unknown) => {
      this.options.log.warn({ err: error }, 'could not remove the heartbeat');
    });
    await this.options.lock?.close();
  }

  private schedule(agent: PolledAgent, seconds: number): void {
    if (this.closed) {
      return;
    }
    this.grid.cancel(agent.timer);
    const ms = Math.round(seconds * 1000);
    // The start-delay metric counts from the time asked for, so the grid's wait shows in it.
    agent.dueAt = performance.now() + ms;
    agent.timer = this.grid.at(ms, () => this.startRound(agent), this.roundSlackMs);
  }

  /** The agent's slot came. The limiter bounds requests and evaluation only; storing the round waits outside it. */
  private startRound(agent: PolledAgent): void {
    agent.timer = undefined;
    this.track(this.limiter.run(() => this.round(agent)).then((decided) => (decided === undefined ? undefined : this.persister.persist(agent, decided.outcome, decided.at))));
  }

  private track(task: Promise<void>): void {
    this.inFlight.add(task);
    // `then`, not `finally`, which makes two more closures and a promise per round; a rejection is
    // thrown on as `finally` would, so it still surfaces as unhandled.
    const untrack = (): void => void this.inFlight.delete(task);
    void task.then(untrack, (error: unknown) => {
      untrack();
      throw error;
    });
  }

  /**
   * Runs one round; undefined when the agent is no longer polled here. Not `async`: it only forwards
   * the decider's promise, and an async layer would add a promise and its resolution to every round.
   */
  private round(agent: PolledAgent): Promise<DecidedRound | undefined> {
    const id = agent.enrolment.agentId;
    if (this.closed || this.agents.get(id) !== agent) {
      return NOT_POLLED;
    }
    return this.decider.decide(agent);
  }

  /** Every agent polled here, as a revocation target (read by the notifier later, off the round's path, which keeps the failed agent's tenant's). */
  private *revocationTargets(): Iterable<RevocationAgentTarget> {
    for (const agent of this.agents.values()) {
      yield agent.revocationTarget;
    }
  }

  /**
   * Re-reads the row and follows it: deleted, stopped, taken over, TERMINATED (delete it now), or polled
   * again. When the row cannot be read the agent is kept, not polled, and the read tried again with
   * back-off, `/health` not ready meanwhile (it read ready: the agent went unattested unseen); every
   * way on from a read that works drops the agent first, which ends that. Only a read that failed for
   * want of the database (`isTransientDatabaseError`, the rule of push's `untilDatabaseAnswers`) is
   * tried again: any other error (a row that does not read cleanly, a refused statement, a bug) fails
   * the same way every time, and tried for ever it held `/health` not ready for good. It is logged at
   * error, counted (`ironlime_verifier_pull_rereads_given_up_total`) and the agent dropped: not polled here, its lease not renewed, its stored row left
   * as it is — its last success ages, so it reads stale, never a fresh PASS — until its lease lapses
   * and a sweep (this process's or another's) claims it and reads it again.
   */
  private async reconcile(agentId: string, attempt = 0): Promise<void> {
    let record: VerifierAgentRecord | undefined;
    try {
      record = await this.options.repository.find(agentId);
    } catch (error) {
      if (!isTransientDatabaseError(error)) {
        this.options.log.error({ err: error, agentId, attempt }, 'could not re-read agent, and not for want of the database: not tried again; not polled here until a sweep claims it again, its stored row reads stale meanwhile');
        this.options.metrics?.rereadGivenUp();
        this.drop(agentId);
        return;
      }
      this.options.log.error({ err: error, agentId, attempt }, 'could not re-read agent; trying again');
      this.options.health.rereadFailed(agentId, error);
      const agent = this.agents.get(agentId);
      if (!this.closed) {
        const timer = this.grid.at(backoffDelayMs(attempt + 1, STORE_RETRY), () => {
          if (agent !== undefined) {
            agent.timer = undefined;
          }
          this.track(this.reconcile(agentId, attempt + 1));
        });
        if (agent !== undefined) {
          this.grid.cancel(agent.timer);
          agent.timer = timer;
        }
      }
      return;
    }
    // A push agent is never polled: an operator's change to one (a policy replaced, a reactivation) wakes
    // this loop too, and loading it as a pull agent would fail it for lacking an address to poll.
    if (record === undefined || record.owner !== this.options.owner || record.verifierId !== this.options.verifierId || record.attestationMode !== 'pull') {
      this.drop(agentId);
      return;
    }
    if (record.state.operationalState === OperationalState.TERMINATED) {
      this.drop(agentId);
      try {
        await this.options.repository.delete(agentId);
        this.options.log.info({ agentId }, 'agent deleted after TERMINATED');
      } catch (error) {
        // The row stays TERMINATED and claimable: the next sweep of any process deletes it.
        this.options.log.error({ err: error, agentId }, 'could not delete a TERMINATED agent');
      }
      return;
    }
    if (!POLLED.includes(record.state.operationalState)) {
      this.drop(agentId);
      return;
    }
    // Polled again (reactivated, or still ours): start from the stored row, policies reloaded.
    this.drop(agentId);
    await this.adopt(record);
  }

  private drop(agentId: string): void {
    const agent = this.agents.get(agentId);
    if (agent !== undefined) {
      this.grid.cancel(agent.timer);
      agent.connection.close();
      this.agents.delete(agentId);
    }
    // A verdict of the agent still waiting to be stored keeps its own mark until its write settles.
    this.options.health.rereadSettled(agentId);
    this.loader.forget(agentId);
    // Deleted, stopped, taken by another process or reloaded: its boot log is verified afresh if it comes back.
    this.options.round.bootLogs?.forget(agentId);
  }
}
