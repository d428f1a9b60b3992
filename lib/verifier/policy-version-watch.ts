import type { Logger } from 'pino';
import { RepeatingCheck } from '../timing/repeating-check.js';
import type { PolledAgent } from './polled-agent.js';
import type { PolicyNames, StoredPolicyVersions, VerifierPolicyRepository } from './verifier-policy-repository.js';

/**
 * How often a process checks the stored versions of the policies its polled agents use: the push
 * side's bound (`POLICY_CHECK_MS`), so a change made through any process is used by every process,
 * pull or push, within about 2 s plus one round.
 */
export const POLICY_VERSION_CHECK_MS = 2_000;

/** What an agent polled here is judged by: the names its enrolment gives, and the versions it compiled. */
export type WatchedAgent = Pick<PolledAgent, 'enrolment' | 'policyVersions'>;

export interface PolicyVersionWatchOptions<A extends WatchedAgent> {
  readonly policies: Pick<VerifierPolicyRepository, 'versionsOf'>;
  /** The agents polled here now. */
  readonly agents: () => Iterable<A>;
  /** The policies `agent` was loaded with changed: reload it before its next round, if it is still the one polled. */
  readonly reload: (agent: A) => void;
  readonly periodMs: number;
  readonly log: Logger;
  /** Runs the check as the scheduler's work in flight, so a shutdown waits for it. */
  readonly track: (task: Promise<void>) => void;
  readonly isClosed: () => boolean;
}

/** The runtime policy and refstate names the agents use, each once. */
export function policyNamesOf(agents: Iterable<WatchedAgent>): PolicyNames {
  const runtime = new Set<string>();
  const mb = new Set<string>();
  for (const { enrolment } of agents) {
    if (enrolment.runtimePolicyName !== null) runtime.add(enrolment.runtimePolicyName);
    if (enrolment.mbPolicyName !== null) mb.add(enrolment.mbPolicyName);
  }
  return { runtime: [...runtime], mb: [...mb] };
}

/**
 * The agents whose runtime policy or refstate is stored in another version than the one they compiled:
 * updated (by any process), or deleted (absent from `stored`, so the reload fails the agent: it is not
 * judged without the policy its enrolment names). An agent whose enrolment names neither is never one.
 */
export function agentsWithChangedPolicies<A extends WatchedAgent>(agents: Iterable<A>, stored: StoredPolicyVersions): A[] {
  const changed: A[] = [];
  for (const agent of agents) {
    const { enrolment, policyVersions } = agent;
    const runtimeChanged = enrolment.runtimePolicyName !== null && stored.runtime.get(enrolment.runtimePolicyName) !== policyVersions.runtime;
    const mbChanged = enrolment.mbPolicyName !== null && stored.mb.get(enrolment.mbPolicyName) !== policyVersions.mb;
    if (runtimeChanged || mbChanged) changed.push(agent);
  }
  return changed;
}

/**
 * Every `periodMs`, one statement for all the names the agents polled here use (none when they use
 * none, no work per agent in the database): the stored versions of those runtime policies and
 * refstates. An agent loaded with another version is reloaded before its next round. A process that
 * changes a policy reloads its own agents at once (`PolicyStoreService`); this bounds the time until
 * the agents another process polls use it. A failed check is logged (once per streak) and tried again
 * at the next tick.
 */
export class PolicyVersionWatch<A extends WatchedAgent> {
  private readonly repeating: RepeatingCheck;
  private failing = false;
  /**
   * The agents already asked to reload: its reload replaces one (a new `PolledAgent`) or follows its
   * round in flight, so asking again at each tick until then would only start duplicate re-reads and
   * log the change again.
   */
  private readonly reloading = new WeakSet<A>();

  constructor(private readonly options: PolicyVersionWatchOptions<A>) {
    this.repeating = new RepeatingCheck(options, () => this.check());
  }

  start(): void {
    this.repeating.start();
  }

  stop(): void {
    this.repeating.stop();
  }

  private async check(): Promise<void> {
    const { policies, log } = this.options;
    // The agents as they are now: one loaded later reads its policies itself, and is checked at the next tick.
    const agents = [...this.options.agents()];
    const names = policyNamesOf(agents);
    if (names.runtime.length === 0 && names.mb.length === 0) {
      return;
    }
    try {
      const stored = await policies.versionsOf(names);
      if (this.failing) {
        log.info('policy version check works again');
        this.failing = false;
      }
      if (this.options.isClosed()) {
        return;
      }
      const changed = agentsWithChangedPolicies(agents, stored).filter((agent) => !this.reloading.has(agent));
      if (changed.length > 0) {
        log.info({ agents: changed.length }, 'stored policies changed: reloading the agents that use them');
      }
      for (const agent of changed) {
        this.reloading.add(agent);
        this.options.reload(agent);
      }
    } catch (error) {
      if (!this.failing) {
        log.warn({ err: error }, 'policy version check failed; trying again');
        this.failing = true;
      }
    }
  }
}
