import { withMatchAllowance } from '../ima/compiled-policy.js';
import { evaluateEvidence, type EvaluateEvidenceOptions, type EvaluateEvidenceResult } from '../attestation/evaluate-evidence.js';
import { IronlimeError, type ErrorCode } from '../../interfaces/errors.js';
import { validateFast, type FastDto } from '../http/fast-path-checks.js';
import { parseRequestBody } from '../http/json-guard.js';
import { fastEvidenceBody } from './evidence-body-fast-path.js';
import type { EvidenceInputsCache } from './evidence-inputs-cache.js';
import { EVIDENCE_MATCH_ALLOWANCE_NS, evidenceMatchAllowance } from './evidence-match-allowance.js';
import { EvidenceBody, type TpmEvidenceData } from './verify-route-dtos.js';
import { messageOf } from './error-message.js';
import type { RawRequestBody } from '../http/route-registration.js';
import { requestBodyText } from '../http/request-body-text.js';

/** The verifier settings the evidence checks read. */
export interface EvidenceCheckOptions {
  readonly measuredBootPolicy: NonNullable<EvaluateEvidenceOptions['measuredBootPolicy']>;
  readonly failOnTomtou: boolean;
}

/**
 * The outcome of one `POST /verify/evidence`, in a form that crosses a thread as it is: the `results`
 * of a 200 as JSON text, or a typed error (by its code) that the route throws so that the service's one
 * error mapping answers it. Anything else that went wrong is `internal` (a 500, never a verdict).
 */
export type EvidenceAnswer =
  | { readonly kind: 'results'; readonly json: string }
  | { readonly kind: 'refused'; readonly code: ErrorCode; readonly message: string }
  | { readonly kind: 'internal'; readonly message: string };

const EVIDENCE_BODY: FastDto<EvidenceBody> = { dto: EvidenceBody, fast: fastEvidenceBody };
/** JSON values an evidence body may hold: `EvidenceBody` has 12 (its logs and policies are strings). */
export const EVIDENCE_MAX_JSON_VALUES = 64;

/** A request body as text: a large one comes as bytes (a `Buffer` posted to a thread arrives as a `Uint8Array`). */
export function evidenceText(body: RawRequestBody): string {
  return typeof body === 'string' ? body : requestBodyText(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}

/**
 * Checks one request body, its text as it came: parsed as the service parses a body (JSON guard, at
 * most `EVIDENCE_MAX_JSON_VALUES` values; empty is no body), validated with the `EvidenceBody` DTO as a DTO route would (behind its fast path,
 * evidence-body-fast-path.ts, which passes only bodies the DTO accepts), then checked
 * with the engine (`evaluateEvidence`), the derived inputs and the measured-boot memo coming from
 * `cache`, the policy's exclude rules charged to this request's match allowance
 * (evidence-match-allowance.ts: passing it is a 400). Never throws: an error (a 400 for a malformed body included) becomes an answer.
 */
export function checkEvidence(bodyText: string, cache: EvidenceInputsCache, options: EvidenceCheckOptions): EvidenceAnswer {
  try {
    const body = parseRequestBody(bodyText, EVIDENCE_MAX_JSON_VALUES);
    const { data } = validateFast(EVIDENCE_BODY, body, 'body');
    const result = evaluate(data, cache, options);
    return { kind: 'results', json: JSON.stringify({ valid: result.valid, claims: result.claims, failures: result.failures }) };
  } catch (error) {
    if (error instanceof IronlimeError) {
      return { kind: 'refused', code: error.code, message: error.message };
    }
    return { kind: 'internal', message: messageOf(error) };
  }
}

/** The `results` JSON text of an answer; a refusal is thrown as its typed error, anything else as an internal one. */
export function resultsJson(answer: EvidenceAnswer): string {
  if (answer.kind === 'results') {
    return answer.json;
  }
  if (answer.kind === 'refused') {
    throw new IronlimeError(answer.code, answer.message);
  }
  throw new Error(`evidence check failed: ${answer.message}`);
}

function evaluate(data: TpmEvidenceData, cache: EvidenceInputsCache, options: EvidenceCheckOptions): EvaluateEvidenceResult {
  const runtimeText = data.runtime_policy ?? '';
  const mbText = data.mb_policy ?? '';
  const mbLog = data.mb_log === undefined || data.mb_log === null || data.mb_log === '' ? null : data.mb_log;
  const mbMemo = mbLog === null ? undefined : cache.measuredBootMemo(mbLog.length);
  return evaluateEvidence(
    {
      quote: data.quote,
      nonce: data.nonce,
      hashAlg: data.hash_alg,
      akTpm: cache.akTpm(data.tpm_ak),
      tpmPolicy: data.tpm_policy === undefined || data.tpm_policy === null || data.tpm_policy === '' ? null : data.tpm_policy,
      runtimePolicy: runtimeText.trim() === '' ? null : withMatchAllowance(cache.runtimePolicy(runtimeText), evidenceMatchAllowance()),
      mbRefstate: mbText.trim() === '' || mbText.trim() === 'null' ? null : cache.refstate(mbText),
      imaMeasurementList: data.ima_measurement_list ?? null,
      mbLog,
    },
    {
      measuredBootPolicy: options.measuredBootPolicy,
      failOnTomtou: options.failOnTomtou,
      // The refstate's kernel_cmdline; the excludes are charged to the policy's own allowance above (400 when passed).
      matchAllowanceNs: EVIDENCE_MATCH_ALLOWANCE_NS,
      ...(mbMemo === undefined ? {} : { mbMemo }),
    },
  );
}
