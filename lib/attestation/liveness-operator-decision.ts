import { isAttestationFresh } from './freshness.js';
import type { LivenessState, LivenessStatus } from './liveness-decision.js';
import { stalenessBound, stalenessProblem, type FreshnessRule, type StalenessWording, type StatusVerdict } from './operator-decision.js';

/**
 * What an operator is told about a node without a TPM, as `operator-decision.ts` decides it for a TPM
 * agent: by our verifier's status reply (`livenessOperatorStatus`) and by the keylime driver reading it
 * (`judgeLivenessStatus`). Only the processes of the enrolling verifier id check a node, but any process
 * answers its status; neither takes an `alive` whose last answer is older than its bound.
 */

/** Our verifier's answer on one liveness-checked node. */
export interface LivenessOperatorStatus {
  /** The stored status, except that a stale `alive` is `pending`. */
  readonly status: LivenessStatus;
  /** The stored status is `alive` but its last answer is missing, older than the bound, or dated more than `FUTURE_SKEW_SECONDS` ahead. */
  readonly stale: boolean;
}

/** The status to show for `state` at `now` (unix seconds) under `bound` seconds (`livenessFreshnessBound`). */
export function livenessOperatorStatus(state: Pick<LivenessState, 'status' | 'lastSeen'>, now: number, bound: number): LivenessOperatorStatus {
  return livenessOperatorStatusOf(state.status, isAttestationFresh(state.lastSeen ?? 0, now, bound));
}

/** `livenessOperatorStatus` once freshness is known (a count grouped in SQL by `freshWindow`). */
export function livenessOperatorStatusOf(status: LivenessStatus, fresh: boolean): LivenessOperatorStatus {
  const stale = status === 'alive' && !fresh;
  return { status: stale ? 'pending' : status, stale };
}

/** The fields of a verifier's liveness reply the verdict reads. */
export interface LivenessView {
  readonly status: LivenessStatus;
  /** `last_seen`, unix seconds; null when never (or not given). */
  readonly lastSeen: number | null;
  readonly lastFailure: string | null;
  readonly integrityEvidence: string;
  /** ironlime's verifier since the field: its bound in seconds, and whether it calls the last answer stale. */
  readonly freshnessBoundSeconds: number | undefined;
  readonly stale: boolean | undefined;
}

const ALIVE_WORDING: StalenessWording = { field: 'last_seen', event: 'last liveness answer', verdict: 'stale alive' };

/**
 * The driver's verdict on one liveness reply at `rule.now`:
 * - `pass` only for `alive` whose `last_seen` is no older than the bound and no more than
 *   `FUTURE_SKEW_SECONDS` ahead, on the verifier's clock (`stalenessProblem`), and which the verifier
 *   does not call stale. The bound is `stalenessBound`'s: the driver's `staleAfterSeconds`, else the
 *   reply's `freshness_bound` (at most a day), else 2 × Keylime's 2 s interval + its 62 s retry budget;
 * - `pending` for a stale `alive`, a node not checked yet, or one the verifier calls stale (the wait
 *   around it ends in `AttestationServiceUnavailable`, never in trust);
 * - `fail` for `unreachable` and `failed`.
 */
export function judgeLivenessStatus(view: LivenessView, rule: FreshnessRule = { now: Date.now() / 1000 }): StatusVerdict {
  const bound = stalenessBound({ freshnessBoundSeconds: view.freshnessBoundSeconds, attestationPeriodSeconds: undefined }, rule);
  if (view.status === 'pending') {
    return view.stale === true
      ? { kind: 'pending', why: `the verifier calls its last liveness answer stale (no answer within its ${view.freshnessBoundSeconds ?? bound} s bound)` }
      : { kind: 'pending', why: 'no liveness check answered yet' };
  }
  if (view.status !== 'alive') {
    return { kind: 'fail', reasons: [`liveness ${view.status}: ${view.lastFailure ?? 'no reason given'}; ${view.integrityEvidence}`], eventIds: [] };
  }
  if (view.lastSeen === null || !Number.isFinite(view.lastSeen) || view.lastSeen <= 0) {
    return { kind: 'pending', why: 'no last_seen in the liveness status' };
  }
  const problem = stalenessProblem(view.lastSeen, bound, rule, ALIVE_WORDING);
  if (problem !== undefined) return { kind: 'pending', why: problem };
  if (view.stale === true) return { kind: 'pending', why: 'the verifier calls its last liveness answer stale' };
  return { kind: 'pass' };
}
