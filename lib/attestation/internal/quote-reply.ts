import { isJsonCount } from '../json-count.js';
import { FailureComponent, failureEvent, type FailureEvent } from './failure.js';

/**
 * The `results` of the agent's `GET /v2.x/quotes/integrity` (and `/quotes/identity`) reply, with
 * Keylime's field names (spec §2). Only `quote` and the three algorithm names are always present.
 */
export interface AgentQuoteReply {
  /** `r<b64 TPMS_ATTEST>:<b64 TPMT_SIGNATURE>:<b64 PCR blob>` (spec §3.1). */
  readonly quote: string;
  readonly hash_alg: string;
  readonly enc_alg: string;
  readonly sign_alg: string;
  /** PEM of the agent's NK key; omitted when the verifier asked with `partial=1`. */
  readonly pubkey?: string | null;
  /** ASCII IMA log from line `ima_measurement_list_entry` on. */
  readonly ima_measurement_list?: string | null;
  readonly ima_measurement_list_entry?: number;
  /** Base64 of the binary UEFI event log (only when PCR 0 was requested). */
  readonly mb_measurement_list?: string | null;
  /** Seconds since the epoch of the agent's boot; the Rust agent does not send it (0). */
  readonly boottime?: number;
}

const OPTIONAL_STRINGS = ['pubkey', 'ima_measurement_list', 'mb_measurement_list'] as const;
const REQUIRED_STRINGS = ['quote', 'hash_alg', 'enc_alg', 'sign_alg'] as const;

/**
 * Checks that an agent's `results` object has the shape of `AgentQuoteReply`. A bad shape is Keylime's
 * irrecoverable `qoute_validation.invalid_data` event (cloud_verifier_common `process_quote_response`).
 */
export function checkQuoteReplyShape(results: unknown): AgentQuoteReply | FailureEvent {
  const invalid = (detail: string): FailureEvent =>
    failureEvent(
      FailureComponent.QUOTE_VALIDATION,
      'invalid_data',
      { message: 'parsing agents get quote response failed', data: detail },
      false,
    );
  if (results === null || typeof results !== 'object' || Array.isArray(results)) {
    return invalid('results is not an object');
  }
  const record = results as Record<string, unknown>;
  for (const key of REQUIRED_STRINGS) {
    if (typeof record[key] !== 'string') {
      return invalid(`${key} must be a string`);
    }
  }
  for (const key of OPTIONAL_STRINGS) {
    const value = record[key];
    if (value !== undefined && value !== null && typeof value !== 'string') {
      return invalid(`${key} must be a string`);
    }
  }
  for (const key of ['ima_measurement_list_entry', 'boottime'] as const) {
    const value = record[key];
    if (value !== undefined && !isJsonCount(value)) {
      return invalid(`${key} must be a non-negative integer`);
    }
  }
  return record as unknown as AgentQuoteReply;
}

/** Type guard separating a reply from the failure `checkQuoteReplyShape` returns. */
export function isFailureEvent(value: AgentQuoteReply | FailureEvent): value is FailureEvent {
  return 'eventId' in value;
}
