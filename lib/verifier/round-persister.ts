import { performance } from 'node:perf_hooks';
import { decideInternalError, type PullDecision } from '../attestation/pull-decision.js';
import type { FailureAnnouncer } from './failure-announcer.js';
import type { PolledAgent } from './polled-agent.js';
import type { PullSchedulerOptions } from './pull-scheduler.js';
import type { VerdictStore } from './verdict-store.js';

/** The scheduler's options storing a round reads. */
export type RoundPersisterOptions = Pick<PullSchedulerOptions, 'repository' | 'owner' | 'round' | 'log'>;

/** The failure recorded in place of a round's verdict the database refused for its values. */
const REFUSED_VERDICT = "the round's verdict could not be stored: the database refused its values";

/** What a stored round leads to, in the scheduler that polls the agent. */
export interface AfterRound {
  /** Runs the agent's next round in `seconds`. */
  schedule(agent: PolledAgent, seconds: number): void;
  /** Re-reads the agent's row and follows it (deleted, stopped, taken over, or polled again). */
  reconcile(agentId: string): Promise<void>;
  /** Stops polling the agent. */
  drop(agentId: string): void;
}

/** The end of a pull round: its verdict stored (`VerdictStore`), announced, applied, and the agent's next step taken. */
export class RoundPersister {
  constructor(
    private readonly options: RoundPersisterOptions,
    private readonly verdicts: VerdictStore,
    private readonly failures: FailureAnnouncer,
    private readonly after: AfterRound,
  ) {}

  /**
   * Stores the round, then acts on it — never the other way round. A write that fails keeps the agent
   * and its verdict in memory until it is stored (`VerdictStore`): meanwhile the agent runs no new
   * round and its lease is not renewed. Once stored, the next round comes `nextRoundIn` after the round
   * was decided (`decidedAt`, `performance.now()`; at once when the outage lasted longer): measured on
   * the monotonic clock, so a wall-clock step back while the verdict was stored does not leave the agent
   * unpolled, its lease renewed, for as long as the step.
   *
   * A verdict the database refuses for its values (`'refused'`, never retried) fails the agent closed:
   * `internal.verifier.exception`, as a round that throws, is stored in its place, from the state the
   * round started from. When that is refused too, nothing is stored: the agent keeps its stored row
   * (its last success ages, so it reads stale, not PASS) and its next round comes as the verdict said,
   * judged again from that row — the quote interval is the back-off.
   */
  async persist(agent: PolledAgent, decided: PullDecision, decidedAt: number): Promise<void> {
    const id = agent.enrolment.agentId;
    // Nothing judged and the row to be re-read anyway: the round writes nothing (and announces nothing).
    const writes = !agent.reconcileAfterRound || decided.history !== undefined;
    let outcome = decided;
    let revocation = writes ? this.failures.prepare(agent.enrolment, agent.state.operationalState, outcome.state, outcome.history) : undefined;
    let stored = writes ? await this.verdicts.store(id, outcome, agent, decidedAt, revocation) : true;
    if (stored === 'refused') {
      outcome = decideInternalError({ state: agent.state, retries: agent.retries }, REFUSED_VERDICT, this.options.round);
      revocation = this.failures.prepare(agent.enrolment, agent.state.operationalState, outcome.state, outcome.history);
      stored = await this.verdicts.store(id, outcome, agent, decidedAt, revocation);
    }
    if (stored === 'refused') {
      this.options.log.error({ agentId: id }, 'the failure recorded in place of a refused verdict was refused too: nothing stored; the agent is judged again at its next round');
      agent.running = false;
      if (decided.next.kind === 'poll') this.after.schedule(agent, decided.next.inSeconds);
      else this.after.drop(id);
      return;
    }
    if (stored === undefined) {
      return;
    }
    // A failure recorded over an operator's stop or delete is announced as a stored one is; the row,
    // which keeps the operator's state, is then re-read (dropped, or deleted after TERMINATED).
    if (stored !== false) this.failures.stored(revocation);
    agent.state = outcome.state;
    if (stored === true && agent.apiVersion !== agent.enrolment.supportedVersion) await this.storeApiVersion(agent);
    // Running until here: an operator's change while the API version is written marks the agent for a
    // re-read after it (`wake`), rather than starting a second re-read beside this one.
    agent.running = false;
    agent.retries = outcome.retries;
    // Stored by an attempt whose answer was lost (`VerdictStore`: the row version forgotten): the row is
    // re-read rather than polled again from the verdict — it may be one an operator stopped meanwhile,
    // over which a FAIL was recorded, and the next verdict could not be stored over an unknown version.
    if (stored !== true || agent.rowVersion === undefined || agent.reconcileAfterRound) {
      agent.reconcileAfterRound = false;
      await this.after.reconcile(id);
      return;
    }
    if (outcome.next.kind === 'poll') {
      this.after.schedule(agent, Math.max(0, outcome.next.inSeconds - (performance.now() - decidedAt) / 1000));
    } else {
      this.after.drop(id);
    }
  }

  /**
   * Keeps the API version negotiated in a round (Keylime stores the new `supported_version`), over the
   * row version the round's verdict left, so the next verdict is written over the version this leaves.
   * A row changed meanwhile (an operator's edit) is left alone and re-read. A failed write is only
   * logged: the agent goes on at the new version, and after a restart the enrolled one is refused again
   * and renegotiated. The row version is kept: a failed write that committed unseen moved it, so the
   * next verdict's conditional write misses and the row is re-read then.
   */
  private async storeApiVersion(agent: PolledAgent): Promise<void> {
    const id = agent.enrolment.agentId;
    if (agent.rowVersion === undefined) return;
    try {
      const version = await this.options.repository.updateSupportedVersion(id, this.options.owner, agent.rowVersion, agent.apiVersion);
      if (version === undefined) {
        agent.reconcileAfterRound = true;
        this.options.log.info({ agentId: id }, 'agent row changed before the renegotiated API version was stored; re-reading the agent');
        return;
      }
      agent.enrolment = { ...agent.enrolment, supportedVersion: agent.apiVersion };
      agent.rowVersion = version;
      this.options.log.info({ agentId: id, apiVersion: agent.apiVersion }, 'agent API version renegotiated');
    } catch (error) {
      this.options.log.error({ err: error, agentId: id }, 'could not store the renegotiated agent API version');
    }
  }
}
