import type { AgentAttestationState } from '../attestation/agent-state.js';
import { parseAgentState } from '../attestation/agent-state.js';
import type { HistoryRow, StoredFailure } from '../attestation/history-row.js';
import type { Reactivation } from '../attestation/pull-decision.js';
import type { OperationalState } from '../attestation/operational-state.js';
import { isTrustLevel, type TrustLevel } from '../identity/trust-level.js';

/** What the tenant enrolled for an agent (spec §4.1), in the form it is stored. */
export interface VerifierAgentEnrolment {
  readonly agentId: string;
  /** Whose agent it is (issue 16); absent = the column's default, `default`. */
  readonly tenant?: string;
  /** base64 of the 32-byte V key, or null (no payload). */
  readonly v: string | null;
  readonly ip: string | null;
  readonly port: number | null;
  readonly verifierIp: string | null;
  readonly verifierPort: number | null;
  /** The `tpm_policy` JSON text. */
  readonly tpmPolicy: string;
  /** Name of the runtime policy in the store, or null for none. */
  readonly runtimePolicyName: string | null;
  /** Name of the refstate in the store, or null for none. */
  readonly mbPolicyName: string | null;
  /** `ima_sign_verification_keys` JSON text, or "". */
  readonly imaSignVerificationKeys: string;
  /** `metadata` JSON text. */
  readonly metaData: string;
  /** `revocation_key` PEM, or "" (stored; revocation notifications are not sent by this verifier). */
  readonly revocationKey: string;
  readonly acceptTpmHashAlgs: readonly string[];
  readonly acceptTpmEncryptionAlgs: readonly string[];
  readonly acceptTpmSigningAlgs: readonly string[];
  /** base64 TPM2B_PUBLIC of the AK (the registrar's `aik_tpm`). */
  readonly akTpm: string;
  /** PEM of the agent's self-signed HTTPS certificate, pinned on every request. */
  readonly mtlsCert: string | null;
  /** Agent API version used in request URLs. */
  readonly supportedVersion: string;
  readonly verifierId: string;
  /** `pull`: the verifier polls the agent; `push`: the agent attests itself (API 3.0, spec §10). */
  readonly attestationMode: AttestationMode;
}

export type AttestationMode = 'pull' | 'push';

/** A stored agent: its enrolment, its attestation state and who polls it. */
export interface VerifierAgentRecord extends VerifierAgentEnrolment {
  readonly state: AgentAttestationState;
  readonly owner: string | null;
  /** Unix seconds of the last request sent to the agent, 0 = never. */
  readonly lastAttemptAt: number;
  /** Unix seconds of the enrolment (a push agent's silence counts from it until its first attestation). */
  readonly enrolledAt: number;
  /** The enrolment's number (`verifier_agents.enrolment`, decimal text): higher for an agent deleted and enrolled again. */
  readonly enrolment: string;
  /**
   * The row's version as read (`agentVersionSql`, selected as `row_version`): a pull verdict decided
   * from this row is stored only over this version. Absent when the query did not select it.
   */
  readonly rowVersion?: string;
}

/** A history row read back. */
export interface HistoryRecord extends HistoryRow {
  readonly id: number;
  readonly agentId: string;
  readonly verifierId: string;
  readonly owner: string | null;
  /** Unix milliseconds. */
  readonly attemptedAt: number;
  readonly operationalState: OperationalState;
  readonly attestationCount: number;
}

/** Column values of an agent's attestation state. */
export function stateColumns(state: AgentAttestationState): Record<string, unknown> {
  return {
    operational_state: state.operationalState,
    attestation_count: state.attestationCount,
    severity_level: state.severityLevel,
    last_event_id: state.lastEventId,
    last_received_quote: secondsToDate(state.lastReceivedQuote),
    last_successful_attestation: secondsToDate(state.lastSuccessfulAttestation),
    tpm_clockinfo: state.tpmClockInfo === null ? null : JSON.stringify(state.tpmClockInfo),
    boottime: state.boottime,
    next_ima_ml_entry: state.ima.nextEntry,
    ima_pcr10: JSON.stringify(state.ima.pcr10),
    learned_ima_keyrings: JSON.stringify(state.ima.learnedKeyrings),
    ima_lag_entries: state.ima.lagEntries,
    agent_pubkey: state.publicKey,
    hash_alg: state.hashAlg,
    enc_alg: state.encAlg,
    sign_alg: state.signAlg,
  };
}

/** Column values of what a reactivation sets. */
export function reactivationColumns(reactivation: Reactivation): Record<string, unknown> {
  return {
    operational_state: reactivation.operationalState,
    severity_level: reactivation.severityLevel,
    last_event_id: reactivation.lastEventId,
    last_successful_attestation: secondsToDate(reactivation.lastSuccessfulAttestation),
  };
}

/** The enrolment's column values. */
export function enrolmentColumns(enrolment: VerifierAgentEnrolment): Record<string, unknown> {
  return {
    agent_id: enrolment.agentId,
    ...(enrolment.tenant === undefined ? {} : { tenant: enrolment.tenant }),
    v: enrolment.v,
    ip: enrolment.ip,
    port: enrolment.port,
    verifier_ip: enrolment.verifierIp,
    verifier_port: enrolment.verifierPort,
    tpm_policy: enrolment.tpmPolicy,
    runtime_policy_name: enrolment.runtimePolicyName,
    mb_policy_name: enrolment.mbPolicyName,
    ima_sign_verification_keys: enrolment.imaSignVerificationKeys,
    meta_data: enrolment.metaData,
    trust_level: trustLevelOfMetadata(enrolment.metaData),
    revocation_key: enrolment.revocationKey,
    accept_tpm_hash_algs: JSON.stringify(enrolment.acceptTpmHashAlgs),
    accept_tpm_encryption_algs: JSON.stringify(enrolment.acceptTpmEncryptionAlgs),
    accept_tpm_signing_algs: JSON.stringify(enrolment.acceptTpmSigningAlgs),
    ak_tpm: enrolment.akTpm,
    mtls_cert: enrolment.mtlsCert,
    supported_version: enrolment.supportedVersion,
    verifier_id: enrolment.verifierId,
    attestation_mode: enrolment.attestationMode,
  };
}

/**
 * The trust level the keylime driver put in the enrolment's `metadata` (the registrar's, issue 15),
 * or null when there is none or it is not a known level (the dashboard shows `unknown`). It says what
 * the enroller claims: the verifier's own evidence is the quote, whatever this says.
 */
export function trustLevelOfMetadata(metaData: string): TrustLevel | null {
  try {
    const level = (JSON.parse(metaData) as Record<string, unknown> | null)?.['trust_level'];
    return isTrustLevel(level) ? level : null;
  } catch {
    return null;
  }
}

/**
 * A database row back as a record. The state crossed a database, so it goes through the engine's
 * `parseAgentState` check before any round uses it.
 */
export function recordFromRow(row: Record<string, unknown>): VerifierAgentRecord {
  const state = parseAgentState({
    operationalState: row['operational_state'],
    attestationCount: row['attestation_count'],
    severityLevel: row['severity_level'] ?? null,
    lastEventId: row['last_event_id'] ?? null,
    lastReceivedQuote: dateToSeconds(row['last_received_quote']),
    lastSuccessfulAttestation: dateToSeconds(row['last_successful_attestation']),
    tpmClockInfo: json(row['tpm_clockinfo']) ?? null,
    boottime: Number(row['boottime'] ?? 0),
    ima: {
      nextEntry: row['next_ima_ml_entry'],
      pcr10: json(row['ima_pcr10']),
      learnedKeyrings: json(row['learned_ima_keyrings']) ?? {},
      lagEntries: row['ima_lag_entries'],
    },
    publicKey: row['agent_pubkey'] ?? null,
    hashAlg: row['hash_alg'] ?? null,
    encAlg: row['enc_alg'] ?? null,
    signAlg: row['sign_alg'] ?? null,
  });
  return {
    agentId: String(row['agent_id']),
    ...(typeof row['tenant'] === 'string' ? { tenant: row['tenant'] } : {}),
    v: nullableString(row['v']),
    ip: nullableString(row['ip']),
    port: nullableNumber(row['port']),
    verifierIp: nullableString(row['verifier_ip']),
    verifierPort: nullableNumber(row['verifier_port']),
    tpmPolicy: String(row['tpm_policy']),
    runtimePolicyName: nullableString(row['runtime_policy_name']),
    mbPolicyName: nullableString(row['mb_policy_name']),
    imaSignVerificationKeys: String(row['ima_sign_verification_keys'] ?? ''),
    metaData: String(row['meta_data'] ?? '{}'),
    revocationKey: String(row['revocation_key'] ?? ''),
    acceptTpmHashAlgs: stringList(row['accept_tpm_hash_algs']),
    acceptTpmEncryptionAlgs: stringList(row['accept_tpm_encryption_algs']),
    acceptTpmSigningAlgs: stringList(row['accept_tpm_signing_algs']),
    akTpm: String(row['ak_tpm']),
    mtlsCert: nullableString(row['mtls_cert']),
    supportedVersion: String(row['supported_version']),
    verifierId: String(row['verifier_id']),
    attestationMode: row['attestation_mode'] === 'push' ? 'push' : 'pull',
    state,
    enrolledAt: dateToSeconds(row['created_at']),
    enrolment: enrolmentOf(row['enrolment']),
    owner: nullableString(row['owner']),
    lastAttemptAt: dateToSeconds(row['last_attempt_at']),
    ...(typeof row['row_version'] === 'string' ? { rowVersion: row['row_version'] } : {}),
  };
}

/**
 * `verifier_agents.enrolment` as decimal text (`pg` returns a `bigint` as a string, PGlite may as a
 * number or `bigint`). A row read without the column throws: as text, a missing value would be
 * "undefined", which equals no stored enrolment, so every write and read of the agent's boot log
 * would silently find nothing.
 */
function enrolmentOf(value: unknown): string {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') {
    return String(value);
  }
  throw new Error('verifier_agents row read without its enrolment column');
}

/** A history row back as a record. */
export function historyFromRow(row: Record<string, unknown>): HistoryRecord {
  return {
    id: Number(row['id']),
    agentId: String(row['agent_id']),
    verifierId: String(row['verifier_id']),
    owner: nullableString(row['owner']),
    attemptedAt: toDate(row['attempted_at'])?.getTime() ?? 0,
    outcome: row['outcome'] as HistoryRow['outcome'],
    nonce: nullableString(row['nonce']),
    imaMlEntry: nullableNumber(row['ima_ml_entry']),
    imaEntriesReceived: nullableNumber(row['ima_entries_received']),
    operationalState: Number(row['operational_state']) as OperationalState,
    attestationCount: Number(row['attestation_count']),
    failures: (json(row['failures']) ?? []) as StoredFailure[],
    ...omittedFailures(row),
  };
}

/** A row's count and event ids of failures left out, when it left some out (a row from before, or with none, has 0). */
function omittedFailures(row: Record<string, unknown>): Pick<HistoryRow, 'failuresOmitted' | 'omittedEventIds'> {
  const omitted = Number(row['failures_omitted'] ?? 0);
  return omitted > 0 ? { failuresOmitted: omitted, omittedEventIds: stringList(row['omitted_event_ids']) } : {};
}

function secondsToDate(seconds: number): Date | null {
  return seconds === 0 ? null : new Date(seconds * 1000);
}

function toDate(value: unknown): Date | undefined {
  if (value === null || value === undefined) {
    return undefined;
  }
  return value instanceof Date ? value : new Date(String(value));
}

function dateToSeconds(value: unknown): number {
  const date = toDate(value);
  return date === undefined ? 0 : Math.floor(date.getTime() / 1000);
}

/** jsonb comes back parsed from `pg` and PGlite; a text value (older drivers) is parsed here. */
function json(value: unknown): unknown {
  return typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
}

function stringList(value: unknown): string[] {
  const list = json(value);
  return Array.isArray(list) ? list.map(String) : [];
}

function nullableString(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

function nullableNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}
