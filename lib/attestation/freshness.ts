import { retryDelay } from './internal/state-machine.js';

/** The pull loop's timing (Keylime `[verifier]` `quote_interval`, `retry_interval`, `max_retries`, `exponential_backoff`). */
export interface PullTiming {
  /** Seconds between rounds (`quote_interval`). */
  readonly quoteInterval: number;
  readonly retryInterval: number;
  readonly maxRetries: number;
  readonly exponentialBackoff: boolean;
}

/** What the pull loop's timing allows between two successful attestations of a healthy agent. */
export interface FreshnessSettings extends PullTiming {
  /** An explicit bound in seconds; undefined: `defaultFreshnessBound`. */
  readonly bound?: number | undefined;
}

/**
 * Seconds a push agent waits between two attestations: the verifier names `quoteInterval` in whole
 * seconds, rounded up (`meta.seconds_to_next_attestation`: the Rust agent reads a u64), and an agent
 * waits at least 1 s (`PushAgent`), so below a second it attests less often than a pull agent is polled.
 */
export function pushAttestationWaitSeconds(quoteInterval: number): number {
  return Math.max(1, Math.ceil(quoteInterval));
}

/**
 * The default age past which a PASS is stale: two attestation periods (a round that was late, and the
 * next one) plus the whole retry budget (every back-off delay before an unreachable agent is FAILED).
 * The period is the longer of the pull loop's (`quoteInterval`) and a push agent's wait
 * (`pushAttestationWaitSeconds`): one bound judges both, and at `quoteInterval` 0.4 with no retries a
 * healthy push agent, attesting every second, was PENDING (stale) between its rounds.
 * An agent that has not passed within it is silent, or its verdicts are not being stored — either way
 * nothing vouches for it now.
 */
export function defaultFreshnessBound(settings: FreshnessSettings): number {
  let budget = 0;
  for (let n = 1; n <= settings.maxRetries; n += 1) {
    budget += retryDelay(n, settings.retryInterval, settings.exponentialBackoff);
  }
  return 2 * Math.max(settings.quoteInterval, pushAttestationWaitSeconds(settings.quoteInterval)) + budget;
}

/** `settings.bound` when given, else the default. */
export function freshnessBound(settings: FreshnessSettings): number {
  return settings.bound ?? defaultFreshnessBound(settings);
}

/** The liveness monitor's timing (lib/verifier/liveness/liveness-monitor.ts), from the verifier's config. */
export interface LivenessTiming {
  /** Seconds between two sweeps (`quoteInterval`). */
  readonly intervalSeconds: number;
  /** Seconds one check may take (`requestTimeout`): a sweep waits for its slowest check. */
  readonly timeoutSeconds: number;
  /** Checks in a row without an answer before a node is `unreachable` (`maxRetries`). */
  readonly maxMisses: number;
  /** An explicit bound in seconds (`staleAfter`); undefined: derived. */
  readonly bound?: number | undefined;
}

/**
 * How old the last liveness answer of an `alive` node may be, as `defaultFreshnessBound` for a PASS:
 * two intervals (a late sweep, and the next) plus the monitor's own retry budget — `maxMisses`
 * sweeps, each up to an interval plus a check's timeout apart, after which a silent node is
 * `unreachable`. Past it no running monitor vouches for the node: its verifier id is retired, its
 * monitor stopped, or its states are not being stored.
 *
 * Never below `livenessBoundFloor`, even when `bound` (`staleAfter`, sized for TPM agents) is given.
 */
export function livenessFreshnessBound(timing: LivenessTiming): number {
  const bound = timing.bound ?? 2 * timing.intervalSeconds + timing.maxMisses * (timing.intervalSeconds + timing.timeoutSeconds);
  return Math.max(bound, livenessBoundFloor(timing));
}

/**
 * The longest a healthy node's answers can be apart: a sweep checks every node at once and waits for
 * the slowest check (up to `timeoutSeconds`, one blackholed node suffices), the next starts an
 * interval after it ends, and the node's own check may take up to a timeout — an interval plus two
 * timeouts. Doubled interval for a late timer or a slow database write: 2 × (interval + timeout).
 */
function livenessBoundFloor(timing: Pick<LivenessTiming, 'intervalSeconds' | 'timeoutSeconds'>): number {
  return 2 * (timing.intervalSeconds + timing.timeoutSeconds);
}

/**
 * Clock skew tolerated for a success dated after `now`: our verifier's processes stamp and judge on the
 * database's clock, each reading it through a measured offset (lib/db/database-clock.ts) a few
 * milliseconds off, and the driver judges a reply by its `Date` (`operator-decision.ts`), which may
 * be another verifier's, Keylime's, whose processes each stamp on their own clock.
 */
export const FUTURE_SKEW_SECONDS = 5;

/** The times (unix seconds, inclusive) a last success may carry at `now` under `bound`: `isAttestationFresh`'s rule as an interval, for queries. */
export interface FreshWindow {
  readonly earliest: number;
  readonly latest: number;
}

/**
 * The window `isAttestationFresh` accepts: no older than `bound` seconds at `now` (unix seconds,
 * fractions allowed) and dated no more than `FUTURE_SKEW_SECONDS` after it. Stored times are whole
 * seconds (Keylime's wire form), so one second is added to the bound to absorb the truncation.
 */
export function freshWindow(now: number, bound: number): FreshWindow {
  return { earliest: now - bound - 1, latest: now + FUTURE_SKEW_SECONDS };
}

/**
 * True when the last successful attestation (unix seconds, 0 = never) lies in `freshWindow(now,
 * bound)`: a success from the future proves nothing about now (a clock ahead would keep it fresh for
 * the skew plus the bound).
 */
export function isAttestationFresh(lastSuccessfulAttestation: number, now: number, bound: number): boolean {
  const window = freshWindow(now, bound);
  return lastSuccessfulAttestation > 0 && lastSuccessfulAttestation >= window.earliest && lastSuccessfulAttestation <= window.latest;
}
