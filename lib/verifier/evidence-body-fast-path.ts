import { hasOnlyKeys, isAbsentOr, isBase64OfAtMost, isStringMatching, isStringOfAtMost } from '../http/fast-path-checks.js';
import { MAX_POLICY_TEXT, MAX_SMALL_JSON, MAX_TPM_B64 } from './verifier-dtos.js';
import { EVIDENCE_NONCE, EVIDENCE_QUOTE, MAX_EVIDENCE_HASH_ALG, MAX_EVIDENCE_MB_LOG, type EvidenceBody } from './verify-route-dtos.js';

/**
 * The fast path for a `POST /verify/evidence` body. class-transformer and class-validator took about
 * 16 % of an evidence worker's time (a profile of `npm run bench -- evidence`: metadata scans for the
 * nested `data`, a `MaxLength` that runs two regular expressions over the whole IMA list and policy).
 *
 * `fastEvidenceBody` is a SUFFICIENT condition for the `EvidenceBody` DTO (`verify-route-dtos.ts`, which
 * stays the definition): it returns the parsed body, unchanged and typed, only when the DTO accepts it
 * as it is — only the DTO's keys, the same types, patterns and bounds, lengths in UTF-16 units — and
 * undefined for anything else, even some bodies the DTO accepts (a surrogate pair near a length
 * bound). The caller then runs `validateDto`, so every refusal keeps class-validator's status and
 * message. `test/verifier/evidence-body-fast-path.test.ts` checks over one-field mutations of a body
 * that it never accepts what the DTO refuses.
 */
export function fastEvidenceBody(value: unknown): EvidenceBody | undefined {
  if (!hasOnlyKeys(value, BODY_KEYS, BODY_KEYS_REQUIRED) || value['type'] !== 'tpm') {
    return undefined;
  }
  const data = value['data'];
  if (
    !hasOnlyKeys(data, DATA_KEYS, DATA_KEYS_REQUIRED) ||
    !isStringMatching(data['quote'], EVIDENCE_QUOTE) ||
    !isStringMatching(data['nonce'], EVIDENCE_NONCE) ||
    !isStringOfAtMost(data['hash_alg'], MAX_EVIDENCE_HASH_ALG) ||
    !isBase64OfAtMost(data['tpm_ak'], MAX_TPM_B64) ||
    !isAbsentOr(data['tpm_ek'], (v) => isBase64OfAtMost(v, MAX_TPM_B64, true)) ||
    !isAbsentOr(data['tpm_policy'], (v) => isStringOfAtMost(v, MAX_SMALL_JSON)) ||
    !isAbsentOr(data['runtime_policy'], (v) => isStringOfAtMost(v, MAX_POLICY_TEXT)) ||
    !isAbsentOr(data['mb_policy'], (v) => isStringOfAtMost(v, MAX_POLICY_TEXT)) ||
    !isAbsentOr(data['ima_measurement_list'], (v) => isStringOfAtMost(v, MAX_POLICY_TEXT)) ||
    !isAbsentOr(data['mb_log'], (v) => isBase64OfAtMost(v, MAX_EVIDENCE_MB_LOG, true))
  ) {
    return undefined;
  }
  return value as unknown as EvidenceBody;
}

const BODY_KEYS = new Set(['type', 'data']);
const BODY_KEYS_REQUIRED = ['type', 'data'];
const DATA_KEYS = new Set(['quote', 'nonce', 'hash_alg', 'tpm_ak', 'tpm_ek', 'tpm_policy', 'runtime_policy', 'mb_policy', 'ima_measurement_list', 'mb_log']);
const DATA_KEYS_REQUIRED = ['quote', 'nonce', 'hash_alg', 'tpm_ak'];
