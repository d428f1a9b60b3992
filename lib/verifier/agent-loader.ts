import { backoffDelayMs } from '../timing/backoff.js';
import { loadPolledAgent, type PolledAgent } from './polled-agent.js';
import type { RoundDecider } from './round-decider.js';
import type { GridEntry, RoundStartGrid } from './round-start-grid.js';
import type { PullSchedulerOptions } from './pull-scheduler.js';
import type { VerifierAgentRecord } from './verifier-agent-record.js';
import { STORE_RETRY, type VerdictStore } from './verdict-store.js';

/** The scheduler's options loading an agent reads. */
export type AgentLoaderOptions = Pick<PullSchedulerOptions, 'agentDeps' | 'health' | 'log'>;

/** What loading an agent needs of the scheduler that polls it. */
export interface LoadedAgents {
  readonly agents: ReadonlyMap<string, PolledAgent>;
  /** Whose verdicts wait to be stored. */
  readonly verdicts: VerdictStore;
  /** Fails an agent whose stored enrolment cannot be loaded. */
  readonly decider: RoundDecider;
  /** Where a load's retry waits. */
  readonly grid: RoundStartGrid;
  isClosed(): boolean;
  /** Starts polling a loaded agent (its first round at once). */
  poll(agent: PolledAgent): void;
  /** Re-reads the agent's row and follows it. */
  reconcile(agentId: string): Promise<void>;
  track(task: Promise<void>): void;
}

/**
 * Loads the agents the pull loop starts polling (enrolled, claimed, or re-read): a load that fails for
 * want of the database is tried again with back-off, `/health` not ready meanwhile. Only an agent's
 * newest adoption counts: `forget` (the scheduler's drop) and a newer adoption make a load still in
 * flight stale, and a stale load, when it ends, neither marks, retries, fails nor polls the agent.
 */
export class AgentLoader {
  /** The next load of each agent whose policies could not be read (`retryLoad`). */
  private readonly retries = new Map<string, GridEntry>();
  /** The token of each agent's load in flight; replaced or removed, it makes that load stale. */
  private readonly loading = new Map<string, symbol>();

  constructor(
    private readonly options: AgentLoaderOptions,
    private readonly scheduler: LoadedAgents,
  ) {}

  /**
   * Starts polling an agent this process owns. `attempt`: loads of it that failed for want of the
   * database; the next is tried after their back-off.
   */
  async adopt(record: VerifierAgentRecord, attempt = 0): Promise<void> {
    const id = record.agentId;
    // A newer adoption of the agent (an operator's wake, a claim) replaces an older one: its retry, or its load in flight.
    this.cancelRetry(id);
    this.loading.delete(id);
    if (this.scheduler.isClosed()) {
      return;
    }
    if (this.scheduler.agents.has(id)) {
      // Loaded by another adoption meanwhile (this may be the retry of one that failed alongside it).
      this.options.health.loadSettled(id);
      return;
    }
    // An agent whose verdict is being stored or waits is not polled from its stored row: that row is older
    // than the verdict (for an unloadable agent, a second adoption would also fail it a second time).
    if (this.scheduler.verdicts.isWaiting(id)) {
      return;
    }
    const token = Symbol(id);
    this.loading.set(id, token);
    const load = await loadPolledAgent(record, this.options.agentDeps);
    if (this.loading.get(id) !== token || this.scheduler.isClosed()) {
      // Dropped or adopted again meanwhile: what that did stands.
      if (load.kind === 'loaded') load.agent.connection.close();
      return;
    }
    this.loading.delete(id);
    if (load.kind === 'unavailable') {
      this.retryLoad(record, attempt, load.error);
      return;
    }
    this.options.health.loadSettled(id);
    if (load.kind === 'unloadable') {
      // Its FAIL may wait for the database as long as a round's: the caller (a sweep) does not wait for it.
      // Not stored (an operator changed the row meanwhile), or recorded over an operator's stop or delete:
      // the row is read again and followed at once. Refused for its values: left unpolled, as after a
      // shutdown, until its lease lapses and a sweep claims it again (reading it again at once would
      // load it, fail it and be refused again without a pause).
      this.scheduler.track(
        this.scheduler.decider
          .failUnloadable(record, load.error)
          .then((stored) => (stored === false || stored === 'failure_recorded' ? this.scheduler.reconcile(id) : undefined)),
      );
      return;
    }
    this.scheduler.poll(load.agent);
  }

  /** The agent is no longer held here: its load in flight turns stale, its retry goes, and it no longer keeps /health at 503. */
  forget(agentId: string): void {
    this.loading.delete(agentId);
    this.cancelRetry(agentId);
    this.options.health.loadSettled(agentId);
  }

  /**
   * The policies of an agent this process holds could not be read (the database): tried again with
   * back-off, the verifier not ready meanwhile. Its lease is not renewed while nobody polls it (only
   * polled agents' are), so once it lapses any process, this one included, may claim it; a later load
   * here from a stale row polls it at most until its first verdict, which is not stored over another owner.
   */
  private retryLoad(record: VerifierAgentRecord, attempt: number, error: unknown): void {
    this.options.log.error({ err: error, agentId: record.agentId, attempt }, 'could not load agent to poll it; trying again');
    this.options.health.loadFailed(record.agentId, error);
    const retry = this.scheduler.grid.at(backoffDelayMs(attempt + 1, STORE_RETRY), () => {
      this.retries.delete(record.agentId);
      this.scheduler.track(this.adopt(record, attempt + 1));
    });
    this.retries.set(record.agentId, retry);
  }

  private cancelRetry(agentId: string): void {
    this.scheduler.grid.cancel(this.retries.get(agentId));
    this.retries.delete(agentId);
  }
}
