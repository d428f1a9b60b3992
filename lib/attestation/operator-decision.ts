import type { AgentAttestationState } from './agent-state.js';
import { FUTURE_SKEW_SECONDS, isAttestationFresh } from './freshness.js';
import { attestationStatus, isOperationalState, OperationalState, operationalStateLabel, type AttestationStatus } from './operational-state.js';

/**
 * What an operator is told about an agent, decided in one place (pure): by our verifier's status
 * reply (`operatorStatus`: Keylime's `attestation_status` plus `trusted` and `stale`), and by the
 * driver reading any verifier's reply, ours or Keylime's (`judgeVerifierStatus`; the polling loop
 * around it lives in `drivers/keylime/status-wait.ts`). Neither trusts a PASS older than its bound.
 */

/** Our verifier's answer on one agent, beside Keylime's fields. */
export interface OperatorStatus {
  /** Keylime's, except that a PASS older than the freshness bound is PENDING (no stale PASS). */
  readonly attestationStatus: 'PASS' | 'FAIL' | 'PENDING';
  /** True only for a PASS no older than the bound — the one field to trust on. */
  readonly trusted: boolean;
  /** The state says PASS but the last success is older than the bound, or dated more than `FUTURE_SKEW_SECONDS` in the future. */
  readonly stale: boolean;
}

/**
 * Keylime says PASS in states 3–6 however long ago the last success was — for a minute while it
 * retries a silent agent, for ever while its database is down. Here a PASS whose last successful
 * attestation is older than `freshnessBound` seconds at `now` (unix seconds) is PENDING and stale.
 */
export function operatorStatus(state: Pick<AgentAttestationState, 'operationalState' | 'lastSuccessfulAttestation'>, now: number, freshnessBound: number): OperatorStatus {
  return operatorStatusOf(attestationStatus(state), isAttestationFresh(state.lastSuccessfulAttestation, now, freshnessBound));
}

/** `operatorStatus` once freshness is known (a count grouped in SQL by `freshWindow`): a PASS that is not fresh is PENDING and stale. */
export function operatorStatusOf(keylimeStatus: AttestationStatus, fresh: boolean): OperatorStatus {
  const stale = keylimeStatus === 'PASS' && !fresh;
  return { attestationStatus: stale ? 'PENDING' : keylimeStatus, trusted: keylimeStatus === 'PASS' && !stale, stale };
}

/** The fields of the verifier's status reply the verdict reads (all optional: real Keylime versions differ). */
export interface VerifierAgentView {
  /** Spec §6.1 code; null for a push agent. */
  readonly operationalState: number | null;
  /** Successful attestations since enrolment. */
  readonly attestationCount: number;
  /** `PASS`, `FAIL`, `PENDING`, `TIMEOUT` (API ≥ 2.5). */
  readonly attestationStatus: string | undefined;
  readonly lastEventId: string | null;
  readonly severityLevel: number | null;
  /** Event ids of failures the verifier keeps beyond `last_event_id`, when it exposes them. */
  readonly failureEventIds: readonly string[];
  /** Human-readable failure contexts the verifier exposes, if any. */
  readonly failureReasons: readonly string[];
  /** `last_successful_attestation`, unix seconds; 0 = never (or not given). */
  readonly lastSuccessfulAttestation: number;
  /** `attestation_period` in seconds (`"2s"`, API ≥ 2.5); undefined when the verifier does not say. */
  readonly attestationPeriodSeconds: number | undefined;
  /** ironlime's verifier: `trusted` and `freshness_bound` (seconds); undefined from Keylime. */
  readonly trusted: boolean | undefined;
  readonly freshnessBoundSeconds: number | undefined;
}

/**
 * How old a PASS may be. Keylime keeps a silent agent in "Get Quote" / PASS for its whole retry budget
 * (about a minute with its defaults) and for ever while its database is down; the driver does not
 * take its word for it.
 */
export interface FreshnessRule {
  /** Unix seconds of the driver's clock. */
  readonly now: number;
  /**
   * Unix seconds of the verifier's clock when it answered (its reply's `Date` header), when known: the
   * age of the last success is taken on it, the clock that stamped the success (`stalenessProblem`).
   */
  readonly verifierNow?: number | undefined;
  /**
   * How the node is attested, as the operator configured it (`keylime_agent_mode`): a push agent passes
   * only on its last verdict, `attestation_status` PASS, whatever its state code says.
   */
  readonly agentMode?: 'pull' | 'push';
  /** Explicit bound in seconds; default: the verifier's `freshness_bound`, else 2 × period + retry budget. */
  readonly staleAfterSeconds?: number | undefined;
  /** The verifier's retry budget in seconds (default 62: Keylime's retry_interval 2, max_retries 5, back-off). */
  readonly retryBudgetSeconds?: number;
  /** Quote interval assumed when the reply has no `attestation_period` (default 2: Keylime's). */
  readonly defaultPeriodSeconds?: number;
}

/** Keylime's defaults: 2 + 4 + 8 + 16 + 32 s of back-off before an unreachable agent is FAILED. */
const KEYLIME_RETRY_BUDGET_SECONDS = 62;
const KEYLIME_QUOTE_INTERVAL_SECONDS = 2;
/**
 * The longest bound a verifier's reply may set (a day, the most the driver option `staleAfterSeconds`
 * takes): a `freshness_bound` or `attestation_period` beyond it would let a PASS of last year count.
 */
const MAX_STALENESS_BOUND_SECONDS = 86_400;

/** The bound `rule` gives for `view`, in seconds; one read from the reply is at most `MAX_STALENESS_BOUND_SECONDS`. */
export function stalenessBound(view: Pick<VerifierAgentView, 'freshnessBoundSeconds' | 'attestationPeriodSeconds'>, rule: FreshnessRule): number {
  if (rule.staleAfterSeconds !== undefined) {
    return rule.staleAfterSeconds;
  }
  if (view.freshnessBoundSeconds !== undefined) {
    return Math.min(view.freshnessBoundSeconds, MAX_STALENESS_BOUND_SECONDS);
  }
  const period = view.attestationPeriodSeconds ?? rule.defaultPeriodSeconds ?? KEYLIME_QUOTE_INTERVAL_SECONDS;
  return Math.min(2 * period + (rule.retryBudgetSeconds ?? KEYLIME_RETRY_BUDGET_SECONDS), MAX_STALENESS_BOUND_SECONDS);
}

export type StatusVerdict =
  | { readonly kind: 'pass' }
  | { readonly kind: 'pending'; readonly why: string }
  | { readonly kind: 'fail'; readonly reasons: readonly string[]; readonly eventIds: readonly string[] };

/** States of a healthy polling loop (GET_QUOTE, PROVIDE_V): the last round got a good quote. */
const GOOD_STATES: ReadonlySet<number> = new Set([OperationalState.GET_QUOTE, OperationalState.PROVIDE_V]);

/**
 * States a push agent that is attesting is kept in: START once enrolled, GET_QUOTE after that (Keylime
 * keeps it there whatever its verdicts; ours too, see `PushRepository.silentAgents`). A retry state,
 * or a code no verifier sends, is not the standing of a healthy push agent, whatever its status says.
 */
const PUSH_STATES: ReadonlySet<number> = new Set([OperationalState.START, OperationalState.GET_QUOTE]);

/**
 * The verdict on one status reply, at `rule.now`:
 *
 * - `fail` when the verifier marked the agent failed (states 7, 9, 10, or `attestation_status` FAIL or
 *   TIMEOUT in any state), or it is being removed (8); reasons name the state, `last_event_id` and severity, plus any failure
 *   history the verifier exposes.
 * - `pass` only when the agent has passed at least one attestation since it was enrolled
 *   (`attestation_count` ≥ 1), its standing is good — a pull agent: state 3 or 5 with
 *   `attestation_status` PASS or none (Keylime before API 2.5 sends none); a push agent (`rule.agentMode`
 *   push, or a state of null): `attestation_status` PASS, its last verdict, in state 1 or 3 (or none) — AND
 *   `last_successful_attestation` is no older than the bound (`stalenessBound`) and not dated ahead, on the
 *   verifier's clock (`stalenessProblem`), and ironlime's verifier does not say `trusted: false`. A stale or future-dated PASS is `pending`:
 *   the wait around it ends in `AttestationFailed` when the verifier gives up on the agent, or
 *   `AttestationServiceUnavailable`.
 * - `pending` otherwise: not yet quoted (0, 1, 2, or 3 with no success yet), retrying an unreachable
 *   agent (4, 6), a push agent in any state but 1 or 3, a state code Keylime does not define, or an
 *   `attestation_status` this judgement does not know (it is not read as a PASS) —
 *   the caller waits.
 */
export function judgeVerifierStatus(view: VerifierAgentView, rule: FreshnessRule = { now: Date.now() / 1000 }): StatusVerdict {
  const state = view.operationalState;
  const eventIds = unique([...(view.lastEventId === null ? [] : [view.lastEventId]), ...view.failureEventIds]);
  const failed = (headline: string): StatusVerdict => ({
    kind: 'fail',
    reasons: unique([headline, ...view.failureReasons]),
    eventIds,
  });
  // A failing status wins over any state code: a push agent can sit in state 3 with a FAIL verdict.
  if (view.attestationStatus === 'FAIL') {
    return failed(`the verifier reports attestation failed${detail(view)}`);
  }
  if (view.attestationStatus === 'TIMEOUT') {
    return failed('the agent stopped sending evidence (verifier status TIMEOUT)');
  }
  // FAILED, INVALID_QUOTE, TENANT_FAILED: the verifier has stopped trusting the agent (status FAIL).
  if (state !== null && isOperationalState(state) && attestationStatus({ operationalState: state }) === 'FAIL') {
    return failed(`the verifier marked the agent "${stateName(state)}"${detail(view)}`);
  }
  if (state === OperationalState.TERMINATED) {
    return failed('the agent is being removed from the verifier (state "Terminated")');
  }
  // Keylime keeps a push agent in "Get Quote" whatever its verdicts: only its status tells them.
  if (state === null || rule.agentMode === 'push') {
    if (state !== null && !PUSH_STATES.has(state)) {
      return { kind: 'pending', why: `push agent in state "${stateName(state)}", not one a push agent attests in` };
    }
    return view.attestationStatus === 'PASS' && view.attestationCount > 0
      ? freshPass(view, rule)
      : { kind: 'pending', why: `push agent status ${view.attestationStatus ?? 'not given'}, ${view.attestationCount} successful attestation(s)` };
  }
  if (view.attestationStatus !== undefined && view.attestationStatus !== 'PASS') {
    return { kind: 'pending', why: `attestation_status ${JSON.stringify(view.attestationStatus)} in state "${stateName(state)}" is not a PASS` };
  }
  if (GOOD_STATES.has(state) && view.attestationCount > 0) {
    return freshPass(view, rule);
  }
  return { kind: 'pending', why: `state "${stateName(state)}", ${view.attestationCount} successful attestation(s)` };
}

/** `pass` when the last success is recent enough and the verifier does not deny trust; else `pending`. */
function freshPass(view: VerifierAgentView, rule: FreshnessRule): StatusVerdict {
  if (view.lastSuccessfulAttestation <= 0) {
    return { kind: 'pending', why: 'no last_successful_attestation in the verifier status' };
  }
  const problem = stalenessProblem(view.lastSuccessfulAttestation, stalenessBound(view, rule), rule, PASS_WORDING);
  if (problem !== undefined) {
    return { kind: 'pending', why: problem };
  }
  if (view.trusted === false) {
    return { kind: 'pending', why: 'the verifier does not trust its last PASS (stale)' };
  }
  return { kind: 'pass' };
}

/** How `stalenessProblem` names the time it judges: the reply's field, the event in words, the stale verdict. */
export interface StalenessWording {
  readonly field: string;
  readonly event: string;
  readonly verdict: string;
}

const PASS_WORDING: StalenessWording = { field: 'last_successful_attestation', event: 'last successful attestation', verdict: 'stale PASS' };

/**
 * How far the verifier's clock (its reply's `Date`) may be from this host's. Fleets without NTP drift by
 * minutes, which says nothing about a node; further off, the `Date` may not be the verifier's clock of
 * now at all (a cached or replayed reply, a proxy's clock) and nothing in the reply is trusted.
 */
export const MAX_CLOCK_SKEW_SECONDS = 900;

/**
 * Why the time `at` (unix seconds, from a verifier's reply) does not vouch for now under `bound`
 * seconds, or undefined when it does. Its age is taken on the clock that stamped it: the verifier's,
 * as its reply's `Date` tells it (`rule.verifierNow`), so a skew between the verifier and this host
 * neither ages a healthy agent's success nor makes a stale one young; that `Date` may be at most
 * `MAX_CLOCK_SKEW_SECONDS` from this host's clock. A reply without `Date` is judged on this host's clock
 * (`rule.now`): the clocks must then agree. A time more than `FUTURE_SKEW_SECONDS` ahead of the clock
 * it is judged on proves nothing about now. Fails closed by itself: a time, bound or clock that is not
 * a finite number is a problem (NaN compares false with everything, so it would otherwise pass).
 */
export function stalenessProblem(at: number, bound: number, rule: Pick<FreshnessRule, 'now' | 'verifierNow'>, wording: StalenessWording): string | undefined {
  if (!Number.isFinite(at)) {
    return `${wording.field} is not a finite time (${at}): not trusted`;
  }
  if (!Number.isFinite(bound)) {
    return `the freshness bound is not a finite number of seconds (${bound}): not trusted`;
  }
  if (!Number.isFinite(rule.now) || (rule.verifierNow !== undefined && !Number.isFinite(rule.verifierNow))) {
    return `the clock to judge ${wording.field} by is not a finite time (here ${rule.now}, verifier ${String(rule.verifierNow)}): not trusted`;
  }
  const skew = rule.verifierNow === undefined ? 0 : rule.verifierNow - rule.now;
  if (Math.abs(skew) > MAX_CLOCK_SKEW_SECONDS) {
    return `the verifier's clock (its reply's Date) is ${Math.round(Math.abs(skew))} s ${skew > 0 ? 'ahead of' : 'behind'} this host's, more than the ${MAX_CLOCK_SKEW_SECONDS} s tolerated: its ${wording.field} is not trusted (synchronise the clocks)`;
  }
  const clock = rule.verifierNow === undefined ? "this host's clock (the reply has no Date)" : "the verifier's clock (its reply's Date)";
  const age = (rule.verifierNow ?? rule.now) - at;
  // A success dated ahead of the clock that stamped it proves nothing about now, and says nothing
  // against the node either: not trusted, and the wait ends as "service unavailable".
  if (-age > FUTURE_SKEW_SECONDS) {
    return `${wording.field} is ${Math.round(-age)} s ahead of ${clock}, more than ${FUTURE_SKEW_SECONDS} s: not trusted`;
  }
  // Whole-second times on the wire: one second of slack, never more.
  if (age > bound + 1) {
    return `${wording.event} ${Math.round(age)} s ago, older than the ${bound} s bound (${wording.verdict})`;
  }
  return undefined;
}

/** Keylime's label of a state code (`common/states.py`), for messages. */
export function stateName(state: number): string {
  return isOperationalState(state) ? operationalStateLabel(state) : `unknown state ${state}`;
}

function detail(view: VerifierAgentView): string {
  const parts = [
    ...(view.lastEventId === null ? [] : [`last event ${view.lastEventId}`]),
    ...(view.severityLevel === null ? [] : [`severity level ${view.severityLevel}`]),
  ];
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}
