import { livenessStatusWord, NO_INTEGRITY_EVIDENCE, storedLivenessStatus, type LivenessStatus } from '../attestation/liveness-decision.js';
import { livenessOperatorStatus } from '../attestation/liveness-operator-decision.js';
import { operationalStateLabel, type OperationalState } from '../attestation/operational-state.js';
import { operatorStatus } from '../attestation/operator-decision.js';
import { isTrustLevel, TRUST_LEVELS, type TrustLevel } from '../identity/trust-level.js';
import type { StatusFreshnessBounds } from '../verifier/freshness-bounds.js';
import { visibleLine } from './visible-text.js';

/** A node's trust level as the dashboard shows it: `unknown` when its enrolment carried none. */
export type ShownTrustLevel = TrustLevel | 'unknown';
/** Strongest first, as the overview lists them. */
export const SHOWN_TRUST_LEVELS: readonly ShownTrustLevel[] = [...[...TRUST_LEVELS].reverse(), 'unknown'];

/**
 * A row of the node table: an agent the verifier attests (quotes, IMA, measured boot) or a node
 * without a TPM it only checks for liveness (`liveness` not null: no state, no rounds, and a status
 * word that is never PASS).
 */
export interface NodeRow {
  readonly agentId: string;
  readonly tenant: string;
  /** Operational state code; null for a liveness-checked node. */
  readonly state: number | null;
  readonly label: string;
  /**
   * PASS/FAIL/PENDING for an attested agent, `livenessStatusWord` for a liveness-checked node, as the
   * status API decides them (`operatorStatus`, `livenessOperatorStatus`): a PASS or `alive` older
   * than its bound is PENDING, with the reason.
   */
  readonly status: string;
  /** The state says PASS (or `alive`) but its last success (or answer) is older than the bound. */
  readonly stale: boolean;
  /**
   * The node table's state cell: the label, and after it the status when the row is stale — the
   * label alone still reads "Get Quote" (or `alive`) and the colour alone would carry the verdict.
   */
  readonly tableState: string;
  /** The colour: `pass`, `fail`, `pending` or `live` (alive, no integrity evidence). */
  readonly tone: 'pass' | 'fail' | 'pending' | 'live';
  readonly trustLevel: ShownTrustLevel;
  /**
   * The level as shown: an attested agent's is what its enroller put in the enrolment's `metadata`,
   * which the verifier does not check (a quote does not show whether the TPM is hardware or emulated),
   * so it reads "(claimed)". A liveness-checked node's mode is what every check's answer must match.
   */
  readonly trustShown: string;
  readonly liveness: LivenessStatus | null;
  /** Liveness-checked nodes: what is (not) known of their integrity; null for attested agents. */
  readonly integrityEvidence: string | null;
  readonly lastSeen: string | null;
  readonly lastFailure: string | null;
  readonly attestationCount: number;
  readonly lastSuccess: string | null;
  readonly lastEventId: string | null;
  readonly runtimePolicy: string | null;
  readonly mbPolicy: string | null;
  readonly ip: string | null;
  readonly port: number | null;
}

export function shownTrustLevel(text: unknown): ShownTrustLevel {
  return isTrustLevel(text) ? text : 'unknown';
}

function isoOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : new Date(value as string).toISOString();
}

/** When a row is judged: unix seconds of this process's clock (as the status API's), and the verifier's bounds. */
export interface StatusClock {
  readonly now: number;
  readonly bounds: StatusFreshnessBounds;
}

/** Whole unix seconds, as the verifier's records read a stored time (`dateToSeconds`); null stays null. */
function unixSecondsOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : Math.floor(new Date(value as string).getTime() / 1000);
}

function staleWord(bound: number, what: string): string {
  return ` (stale: no ${what} within ${bound} s)`;
}

function tableState(label: string, status: string, stale: boolean): string {
  return stale ? `${label} — ${status}` : label;
}

/** The dashboard's view of one row of `DashboardQueries`' node relation at `clock`. */
export function nodeRow(row: Record<string, unknown>, clock: StatusClock): NodeRow {
  const common = {
    agentId: String(row['agent_id']),
    tenant: String(row['tenant']),
    trustLevel: shownTrustLevel(row['trust_level']),
    attestationCount: Number(row['attestation_count']),
    lastSuccess: isoOrNull(row['last_successful_attestation']),
    lastEventId: (row['last_event_id'] as string | null) ?? null,
    runtimePolicy: (row['runtime_policy_name'] as string | null) ?? null,
    mbPolicy: (row['mb_policy_name'] as string | null) ?? null,
    ip: (row['ip'] as string | null) ?? null,
    port: row['port'] === null || row['port'] === undefined ? null : Number(row['port']),
    lastSeen: isoOrNull(row['last_seen_at']),
    // The engine's reason quotes the node's answer (`shownValue`): shown on one line, its invisible characters visible.
    lastFailure: typeof row['last_failure'] === 'string' ? visibleLine(row['last_failure']) : null,
  };
  if (row['liveness_status'] !== null && row['liveness_status'] !== undefined) {
    const shown = livenessOperatorStatus({ status: storedLivenessStatus(row['liveness_status']), lastSeen: unixSecondsOrNull(row['last_seen_at']) }, clock.now, clock.bounds.liveness);
    const liveness = shown.status;
    const tone = liveness === 'alive' ? 'live' : liveness === 'pending' ? 'pending' : 'fail';
    const status = livenessStatusWord(liveness) + (shown.stale ? staleWord(clock.bounds.liveness, 'liveness answer') : '');
    const label = `liveness check: ${liveness}, no integrity evidence`;
    return { ...common, trustShown: common.trustLevel, state: null, label, status, stale: shown.stale, tableState: tableState(label, status, shown.stale), tone, liveness, integrityEvidence: NO_INTEGRITY_EVIDENCE };
  }
  const state = Number(row['operational_state']) as OperationalState;
  const shown = operatorStatus({ operationalState: state, lastSuccessfulAttestation: unixSecondsOrNull(row['last_successful_attestation']) ?? 0 }, clock.now, clock.bounds.pass);
  const tone = shown.attestationStatus === 'PASS' ? 'pass' : shown.attestationStatus === 'FAIL' ? 'fail' : 'pending';
  const status = shown.attestationStatus + (shown.stale ? staleWord(clock.bounds.pass, 'successful attestation') : '');
  const label = operationalStateLabel(state);
  const trustShown = common.trustLevel === 'unknown' ? common.trustLevel : `${common.trustLevel} (claimed)`;
  return { ...common, trustShown, state, label, status, stale: shown.stale, tableState: tableState(label, status, shown.stale), tone, liveness: null, integrityEvidence: null };
}
