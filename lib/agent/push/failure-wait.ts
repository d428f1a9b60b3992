import { PUSH_AGENT_WAIT_JITTER } from '../../attestation/push-agent-waits.js';

/**
 * How long a push agent waits after a failed attempt. A fleet that failed together (a verifier
 * outage) would otherwise try again together, round after round, and meet the restarted verifier
 * (its costly token hashes first) all at once; so each wait is drawn at random around its value.
 * `random` returns a number in [0, 1), as `Math.random` does.
 */

/** The shortest failure wait, whatever the back-off options say: an initial delay of 0 or NaN made a hot retry loop. */
export const MIN_FAILURE_WAIT_MS = 1000;
/**
 * The longest back-off wait: an hour, far past Keylime's 300 s cap and below setTimeout's 2^31−1 ms,
 * past which Node fires at once (a `maxDelayMs` of Infinity would make a hot loop too).
 */
export const MAX_BACKOFF_WAIT_MS = 3_600_000;

/** A back-off wait of `computedMs` drawn uniformly from 0.75 … 1.25 times it, then kept within 1 s … 1 h. */
export function backoffWaitMs(computedMs: number, random: () => number = Math.random): number {
  const drawn = computedMs * (1 - PUSH_AGENT_WAIT_JITTER + 2 * PUSH_AGENT_WAIT_JITTER * random());
  // Written so that NaN (an option of NaN, or Infinity × 0) lands on the floor rather than in setTimeout.
  return drawn >= MIN_FAILURE_WAIT_MS ? Math.min(drawn, MAX_BACKOFF_WAIT_MS) : MIN_FAILURE_WAIT_MS;
}

/** A wait the verifier named (`Retry-After`, already bounded by the caller) lengthened by 0 … 25 %: never earlier than it asked, nor below 1 s. */
export function namedWaitMs(namedMs: number, random: () => number = Math.random): number {
  return Math.max(MIN_FAILURE_WAIT_MS, namedMs) * (1 + PUSH_AGENT_WAIT_JITTER * random());
}
