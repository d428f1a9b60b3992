/** An exponential back-off: `initialDelayMs` after the first failure, doubling with each next one. */
export interface ExponentialBackoff {
  readonly initialDelayMs: number;
  /** The longest wait. */
  readonly maxDelayMs: number;
  /** Doublings after which the wait stops growing (default: none but `maxDelayMs`). */
  readonly maxDoublings?: number;
}

/** The wait after `failures` (≥ 1) consecutive failures: initial × 2^(failures − 1), capped. */
export function backoffDelayMs(failures: number, backoff: ExponentialBackoff): number {
  const doublings = Math.min(Math.max(0, failures - 1), backoff.maxDoublings ?? Infinity);
  return Math.min(backoff.maxDelayMs, backoff.initialDelayMs * 2 ** doublings);
}

/**
 * `delayMs` spread at random over its upper half, so processes that failed at the same moment (a
 * database restart) do not all try again at the same moment.
 */
export function withJitter(delayMs: number, random: () => number = Math.random): number {
  return delayMs / 2 + random() * (delayMs / 2);
}
