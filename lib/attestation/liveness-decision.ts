import { verifyHostSecretProof } from '../identity/host-secret-proof.js';
import { FUTURE_SKEW_SECONDS } from './freshness.js';

/**
 * Continuous checks of a node without a TPM (issue 15 item 3, docs/identity.md). There is no quote,
 * IMA list or boot log to judge: the verifier only learns that the host still answers (`id-only`) or
 * still holds its secret (`id-secret`). The status words say so: it is never "PASS".
 */
/** The identity modes a node without a TPM is checked in. */
export const LIVENESS_MODES = ['id-secret', 'id-only'] as const;
export type LivenessMode = (typeof LIVENESS_MODES)[number];

/**
 * - `pending`: enrolled, no check answered yet;
 * - `alive`: the last check answered (and, for `id-secret`, proved the secret for a fresh nonce);
 * - `unreachable`: `maxMisses` checks in a row got no answer (may come back);
 * - `failed`: a wrong proof, an answer for another agent or mode: final until re-enrolled.
 */
export type LivenessStatus = 'pending' | 'alive' | 'unreachable' | 'failed';

/** Every status, in the order the dashboard lists them. */
export const LIVENESS_STATUSES: readonly LivenessStatus[] = ['alive', 'pending', 'unreachable', 'failed'];

/** A status read back from storage; a text that is not ours reads as `failed` (fail closed). */
export function storedLivenessStatus(text: unknown): LivenessStatus {
  return LIVENESS_STATUSES.find((status) => status === text) ?? 'failed';
}

export interface LivenessState {
  readonly status: LivenessStatus;
  /** Consecutive checks without an answer. */
  readonly misses: number;
  /** Seconds since the epoch of the last good answer; null before the first. */
  readonly lastSeen: number | null;
  /** Why the node is `unreachable` or `failed`; null otherwise. */
  readonly lastFailure: string | null;
}

/** What one check brought back: the agent's `/liveness` results, or nothing. */
export type LivenessObservation =
  | { readonly kind: 'answer'; readonly results: unknown }
  | { readonly kind: 'no_answer'; readonly message: string };

export interface LivenessCheck {
  readonly agentId: string;
  readonly mode: LivenessMode;
  /** `id-secret`: the proof key the registrar holds for this host. */
  readonly proofKey: Uint8Array | null;
  /** The nonce sent with this check: fresh every time, so an old proof never matches. */
  readonly nonce: string;
  /** Seconds since the epoch. */
  readonly now: number;
  /** Misses in a row before the node counts as unreachable (Keylime's `max_retries` for pull agents). */
  readonly maxMisses: number;
  /** Seconds between two checks of the node by one process (the verifier's `quoteInterval`). */
  readonly intervalSeconds: number;
}

/** Wording the verifier's status uses instead of PASS: there is nothing to pass. */
export const NO_INTEGRITY_EVIDENCE = 'integrity evidence unavailable: this node has no TPM (no quote, IMA or measured boot)';

/**
 * The status word of a liveness-checked node where a TPM node shows PASS/FAIL/PENDING: never "PASS",
 * and `alive` says in the same words that nothing about the node's integrity is known.
 */
export function livenessStatusWord(status: LivenessStatus): string {
  return status === 'alive' ? 'LIVE (no integrity evidence)' : status.toUpperCase();
}

export const INITIAL_LIVENESS: LivenessState = Object.freeze({ status: 'pending', misses: 0, lastSeen: null, lastFailure: null });

/** The state after one check. A `failed` node stays failed: a wrong proof is not a network hiccup. */
export function decideLiveness(state: LivenessState, check: LivenessCheck, observation: LivenessObservation): LivenessState {
  if (state.status === 'failed') return state;
  if (observation.kind === 'no_answer') {
    const misses = state.misses + 1;
    // Every process of a verifier id checks every node, so misses add up faster than intervals pass:
    // the node must also have been silent for as long as one process takes to miss `maxMisses` checks.
    // A last answer dated further ahead than clocks may drift means the database's clock stepped back:
    // the silence cannot be measured then, and waiting for it would keep a dead node alive until the clock caught up.
    const silence = state.lastSeen === null ? Infinity : check.now - state.lastSeen;
    const silentLongEnough = silence < -FUTURE_SKEW_SECONDS || silence >= (check.maxMisses - 1) * check.intervalSeconds;
    return misses >= check.maxMisses && silentLongEnough
      ? { ...state, status: 'unreachable', misses, lastFailure: `no answer to ${misses} liveness checks in a row: ${observation.message}` }
      : { ...state, misses };
  }
  const problem = answerProblem(check, observation.results);
  if (problem !== undefined) return { ...state, status: 'failed', misses: 0, lastFailure: problem };
  return { status: 'alive', misses: 0, lastSeen: check.now, lastFailure: null };
}

function answerProblem(check: LivenessCheck, results: unknown): string | undefined {
  if (typeof results !== 'object' || results === null) return 'the liveness answer is not an object';
  const answer = results as Record<string, unknown>;
  if (answer['agent_uuid'] !== check.agentId) return `the liveness answer names another agent (${shownValue(answer['agent_uuid'], 80)})`;
  if (answer['identity_mode'] !== check.mode) return `the agent answers as ${shownValue(answer['identity_mode'], 20)}, enrolled as ${check.mode}`;
  if (check.mode === 'id-only') return undefined;
  const proof = answer['proof'];
  if (check.proofKey === null) return 'no proof key is known for this id-secret node';
  if (typeof proof !== 'string' || !verifyHostSecretProof(check.proofKey, check.agentId, check.nonce, proof)) {
    return 'the host-secret proof does not match the nonce (lost, foreign or replayed secret)';
  }
  return undefined;
}

/**
 * A field of the node's answer in a reason, at most `max` characters: text as it is, anything else as
 * JSON (`String` throws on an object whose `toString` is not a function, and the check then stored nothing).
 */
function shownValue(value: unknown, max: number): string {
  return (typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value))).slice(0, max);
}
