import { operatorStatus } from '../attestation/operator-decision.js';
import { shownOnProcessClock, type DatabaseClockReadings } from '../db/database-clock.js';
import type { VerifierAgentRecord } from './verifier-agent-record.js';

/** `results` of `GET /v2.x/agents/{id}` (spec §4.2), with Keylime's field names and types. */
export interface AgentStatusResults {
  readonly operational_state: number;
  /** Keylime echoes V here; this verifier never shows the key: null. */
  readonly v: null;
  readonly ip: string | null;
  readonly port: number | null;
  readonly tpm_policy: string;
  readonly meta_data: string;
  readonly has_mb_refstate: 0 | 1;
  readonly has_runtime_policy: 0 | 1;
  readonly accept_tpm_hash_algs: readonly string[];
  readonly accept_tpm_encryption_algs: readonly string[];
  readonly accept_tpm_signing_algs: readonly string[];
  readonly hash_alg: string | null;
  readonly enc_alg: string | null;
  readonly sign_alg: string | null;
  readonly verifier_id: string;
  readonly verifier_ip: string;
  readonly verifier_port: number;
  readonly severity_level: number | null;
  readonly last_event_id: string | null;
  readonly attestation_count: number;
  readonly last_received_quote: number;
  readonly last_successful_attestation: number;
  /** Keylime's, except that a PASS older than the freshness bound is PENDING (no stale PASS). */
  readonly attestation_status: 'PASS' | 'FAIL' | 'PENDING';
  readonly attestation_period: string;
  readonly maximum_attestation_interval: string;
  /** ironlime: true only for a PASS no older than `freshness_bound` — the one field to trust on. */
  readonly trusted: boolean;
  /** ironlime: the agent's AK (base64 TPM2B_PUBLIC), so a relying party can bind the agent id to its TPM. */
  readonly ak_tpm: string;
  /** ironlime: seconds after `last_successful_attestation` a PASS stays valid. */
  readonly freshness_bound: number;
  /** ironlime: the state says PASS but the last success is older than the bound. */
  readonly stale: boolean;
}

export interface StatusContext {
  /** `meta.generator` of the agent's runtime policy, or undefined for none. */
  readonly runtimePolicyGenerator: number | undefined;
  readonly quoteInterval: number;
  readonly verifierHost: string;
  readonly verifierPort: number;
  /** Seconds (`freshnessBound`). */
  readonly freshnessBound: number;
  /**
   * When the status is read: by the database's clock, which stamped the stored times (every process
   * stamps on it), and by this process's, which dates the reply (its `Date` header).
   */
  readonly clock: DatabaseClockReadings;
}

/**
 * Builds the status object of one agent (`has_runtime_policy` is 1 iff the policy's generator is above
 * 1). `attestation_status`, `trusted` and `stale` are the engine's `operatorStatus`, on the database's
 * clock that stamped the last success: a PASS whose last successful attestation is older than
 * `freshnessBound` is PENDING with `stale: true`, `trusted: false`. The times are given on this
 * process's clock, as its reply's `Date` is, so that `Date` minus `last_successful_attestation` is the
 * success's age whichever processes stamped and answered.
 */
export function agentStatusResults(record: VerifierAgentRecord, context: StatusContext): AgentStatusResults {
  const state = record.state;
  const status = operatorStatus(state, context.clock.databaseNow, context.freshnessBound);
  return {
    operational_state: state.operationalState,
    v: null,
    ip: record.ip,
    port: record.port,
    tpm_policy: record.tpmPolicy,
    meta_data: record.metaData,
    has_mb_refstate: record.mbPolicyName === null ? 0 : 1,
    has_runtime_policy: (context.runtimePolicyGenerator ?? 0) > 1 ? 1 : 0,
    accept_tpm_hash_algs: record.acceptTpmHashAlgs,
    accept_tpm_encryption_algs: record.acceptTpmEncryptionAlgs,
    accept_tpm_signing_algs: record.acceptTpmSigningAlgs,
    hash_alg: state.hashAlg,
    enc_alg: state.encAlg,
    sign_alg: state.signAlg,
    verifier_id: record.verifierId,
    verifier_ip: record.verifierIp ?? context.verifierHost,
    verifier_port: record.verifierPort ?? context.verifierPort,
    severity_level: state.severityLevel,
    last_event_id: state.lastEventId,
    attestation_count: state.attestationCount,
    last_received_quote: onProcessClock(state.lastReceivedQuote, context.clock),
    last_successful_attestation: onProcessClock(state.lastSuccessfulAttestation, context.clock),
    attestation_status: status.attestationStatus,
    attestation_period: `${context.quoteInterval}s`,
    maximum_attestation_interval: `${context.quoteInterval * 5}s`,
    trusted: status.trusted,
    freshness_bound: context.freshnessBound,
    ak_tpm: record.akTpm,
    stale: status.stale,
  };
}

/** A stored time (0 = never) on this process's clock (`shownOnProcessClock`). */
function onProcessClock(stored: number, clock: DatabaseClockReadings): number {
  return stored === 0 ? 0 : shownOnProcessClock(stored, clock);
}
