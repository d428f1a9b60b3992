import { InvalidParameterValue } from '../../interfaces/errors.js';
import { initialImaReplayState, parseImaReplayState, type ImaReplayState } from '../ima/ima-replay-state.js';
import type { StoredClockInfo } from './internal/clock-check.js';
import { isOperationalState, OperationalState } from './operational-state.js';

/**
 * Everything the verifier keeps per agent between attestation rounds (Keylime's `verifiermain` row
 * and `AgentAttestState`; spec §6.2 step 7), as plain JSON so any verifier process can load it from
 * the database and continue where another left off.
 */
export interface AgentAttestationState {
  /** Keylime `operational_state` (spec §6.1). */
  readonly operationalState: OperationalState;
  /** Successful rounds so far (`attestation_count`); measured boot `once` evaluates while it is 0. */
  readonly attestationCount: number;
  /** Highest severity level recorded (`severity_level`), null before any failure. */
  readonly severityLevel: number | null;
  /** Event id of the failure that set `severityLevel` (`last_event_id`). */
  readonly lastEventId: string | null;
  /** Unix seconds of the last reply evaluated (`last_received_quote`), 0 = never. */
  readonly lastReceivedQuote: number;
  /** Unix seconds of the last pass (`last_successful_attestation`), 0 = never. */
  readonly lastSuccessfulAttestation: number;
  /** Clock info of the last passing quote (`tpm_clockinfo`), null before the first. */
  readonly tpmClockInfo: StoredClockInfo | null;
  /** Boot time the agent reported with the stored IMA state (`boottime`; the Rust agent sends none: 0). */
  readonly boottime: number;
  /**
   * Incremental IMA state (`next_ima_ml_entry`, running PCR 10 per bank, `learned_ima_keyrings`, the
   * quote-progress lag), from lib/ima.
   */
  readonly ima: ImaReplayState;
  /** The agent's NK public key (PEM) from its last full reply: PCR 16 binds it, V is encrypted to it. */
  readonly publicKey: string | null;
  /** Algorithms of the last reply (`hash_alg`, `enc_alg`, `sign_alg`, shown by the status endpoint). */
  readonly hashAlg: string | null;
  readonly encAlg: string | null;
  readonly signAlg: string | null;
}

/** The state of a newly enrolled agent: START in pull mode (spec §4.1), nothing attested yet. */
export function initialAgentState(operationalState: OperationalState = OperationalState.START): AgentAttestationState {
  return {
    operationalState,
    attestationCount: 0,
    severityLevel: null,
    lastEventId: null,
    lastReceivedQuote: 0,
    lastSuccessfulAttestation: 0,
    tpmClockInfo: null,
    boottime: 0,
    ima: initialImaReplayState(),
    publicKey: null,
    hashAlg: null,
    encAlg: null,
    signAlg: null,
  };
}

/**
 * Checks a state read back from storage before the engine uses it (it crossed a database).
 * @throws InvalidParameterValue naming the bad field (and lib/ima's error for a bad `ima` state).
 */
export function parseAgentState(value: unknown): AgentAttestationState {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidParameterValue('state', 'must be an object');
  }
  const v = value as Record<string, unknown>;
  if (!isOperationalState(v['operationalState'])) {
    throw new InvalidParameterValue('state.operationalState', 'must be a Keylime state code 0-10');
  }
  return {
    operationalState: v['operationalState'],
    attestationCount: count(v, 'attestationCount'),
    severityLevel: v['severityLevel'] === null ? null : count(v, 'severityLevel'),
    lastEventId: nullableString(v, 'lastEventId'),
    lastReceivedQuote: count(v, 'lastReceivedQuote'),
    lastSuccessfulAttestation: count(v, 'lastSuccessfulAttestation'),
    tpmClockInfo: v['tpmClockInfo'] === null ? null : clockInfo(v['tpmClockInfo']),
    boottime: count(v, 'boottime'),
    ima: parseImaReplayState(v['ima']),
    publicKey: nullableString(v, 'publicKey'),
    hashAlg: nullableString(v, 'hashAlg'),
    encAlg: nullableString(v, 'encAlg'),
    signAlg: nullableString(v, 'signAlg'),
  };
}

function count(v: Record<string, unknown>, field: string): number {
  const value = v[field];
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new InvalidParameterValue(`state.${field}`, 'must be a non-negative integer');
  }
  return value as number;
}

function nullableString(v: Record<string, unknown>, field: string): string | null {
  const value = v[field];
  if (value !== null && typeof value !== 'string') {
    throw new InvalidParameterValue(`state.${field}`, 'must be a string or null');
  }
  return value;
}

function clockInfo(value: unknown): StoredClockInfo {
  const c = (value ?? {}) as Record<string, unknown>;
  if (typeof c['clock'] !== 'string' || !/^\d{1,20}$/.test(c['clock']) || typeof c['safe'] !== 'boolean') {
    throw new InvalidParameterValue('state.tpmClockInfo', 'must be {clock: decimal string, resetCount, restartCount, safe: boolean}');
  }
  return {
    clock: c['clock'],
    resetCount: count(c, 'resetCount'),
    restartCount: count(c, 'restartCount'),
    safe: c['safe'],
  };
}
