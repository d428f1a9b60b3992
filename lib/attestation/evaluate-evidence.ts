import type { KeyObject } from 'node:crypto';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import type { CompiledRuntimePolicy } from '../ima/compiled-policy.js';
import type { ImaKeyring } from '../ima/ima-keyring.js';
import { initialImaReplayState } from '../ima/ima-replay-state.js';
import type { MbRefstate } from '../mb/mb-refstate.js';
import type { TpmPolicyJson } from './agent-policies.js';
import { isQuoteHashAlg } from './algorithms.js';
import { runAttestationChecks, type AttestationClaims } from './attestation-checks.js';
import { FailureComponent, failureEvent, type Failure, type FailureEvent } from './internal/failure.js';
import type { MeasuredBootPolicyName } from './internal/mb-check.js';
import type { MeasuredBootMemo } from './mb-check-memo.js';
import { IMA_PCR } from '../tpm/keylime-profile.js';
import { compileSeverityPolicy, labelFailures, type SeverityPolicy } from './severity.js';
import { parseTpmPolicy, type TpmPolicy } from './tpm-policy.js';

/**
 * The `data` of `POST /v2.x/verify/evidence` with `type: "tpm"` (spec §4.7), after the service decoded
 * it: policies parsed and compiled the same way as at enrolment.
 */
export interface TpmEvidence {
  readonly quote: string;
  /** The nonce the quote must carry: a string's ASCII bytes, or raw bytes. */
  readonly nonce: string | Uint8Array;
  readonly hashAlg: string;
  /** `tpm_ak`: base64 TPM2B_PUBLIC, its bytes, or a key made with `akPublicKey`. */
  readonly akTpm: string | Uint8Array | KeyObject;
  readonly tpmPolicy?: TpmPolicyJson | string | TpmPolicy | null;
  readonly runtimePolicy?: CompiledRuntimePolicy | null;
  readonly imaKeyring?: ImaKeyring;
  readonly mbRefstate?: MbRefstate | null;
  /** The whole ASCII IMA list (entry 0 onwards). */
  readonly imaMeasurementList?: string | null;
  /** `mb_log`: base64 (or raw) UEFI event log. */
  readonly mbLog?: string | Uint8Array | null;
}

export interface EvaluateEvidenceOptions {
  readonly measuredBootPolicy?: MeasuredBootPolicyName;
  readonly failOnTomtou?: boolean;
  /** Only labels `details`; the reply's `valid` does not depend on severity. */
  readonly severityPolicy?: SeverityPolicy;
  /** The caller's measured-boot memo (an explicit object it owns); absent: the boot log is checked afresh. */
  readonly mbMemo?: MeasuredBootMemo;
  /**
   * What the evidence may spend matching its policies' patterns (`RoundInput.matchAllowanceNs`); passing
   * it makes the evidence invalid. A runtime policy already charged to an allowance of its own
   * (`withMatchAllowance`) keeps that one.
   */
  readonly matchAllowanceNs?: number;
}

const DEFAULT_SEVERITY = compileSeverityPolicy();

/** One entry of the reply's `failures`, as Keylime writes it. */
export interface EvidenceFailure {
  readonly type: string;
  readonly context: Readonly<Record<string, unknown>>;
}

export interface EvaluateEvidenceResult {
  /** The reply body: `{valid, claims, failures: [{type, context}]}` (HTTP 200 whether valid or not). */
  readonly valid: boolean;
  readonly claims: AttestationClaims;
  readonly failures: readonly EvidenceFailure[];
  /** The same failures with recoverability and severity, for logs (not part of the reply). */
  readonly details: readonly Failure[];
}

/**
 * One-shot evidence check for `POST /verify/evidence` (spec §4.7): the same checks as a pull round
 * (`runAttestationChecks`, shared with `evaluateQuote`) minus what needs an enrolled agent — no
 * TPM clock comparison (there is no previous quote) and no PCR 16 binding (there is no NK key).
 * The IMA list is replayed from entry 0 and the refstate is always evaluated (`once` on a first round).
 * There are no accept lists: any hash algorithm Keylime recognises is allowed, and the signature
 * scheme is whatever the AK allows. Stricter than Keylime: with a runtime policy, a quote that does
 * not cover PCR 10 fails (`pcr_validation.missing_pcr_10`).
 *
 * @throws InvalidParameterValue for input errors (HTTP 400): an unknown `hash_alg` or a malformed
 *   `tpm_policy`. A malformed quote or AK is evidence that fails (`qoute_validation.quote_validation`).
 */
export function evaluateEvidence(evidence: TpmEvidence, options: EvaluateEvidenceOptions = {}): EvaluateEvidenceResult {
  if (!isQuoteHashAlg(evidence.hashAlg)) {
    throw new InvalidParameterValue('data.hash_alg', `unsupported hash algorithm "${evidence.hashAlg}"`);
  }
  const tpmPolicy = parseTpmPolicy(evidence.tpmPolicy ?? {}, 'data.tpm_policy');
  const nonce = typeof evidence.nonce === 'string' ? new Uint8Array(Buffer.from(evidence.nonce, 'utf8')) : evidence.nonce;
  const round = runAttestationChecks({
    quote: evidence.quote,
    nonce,
    hashAlg: evidence.hashAlg,
    akTpm: evidence.akTpm,
    tpmPolicy,
    bindPublicKey: null,
    previousClock: undefined,
    ima: { listText: evidence.imaMeasurementList, startEntry: 0, state: initialImaReplayState(), replay: true },
    runtimePolicy: evidence.runtimePolicy ?? null,
    imaKeyring: evidence.imaKeyring,
    failOnTomtou: options.failOnTomtou === true,
    matchAllowanceNs: options.matchAllowanceNs,
    mb: {
      eventLog: evidence.mbLog,
      refstate: evidence.mbRefstate ?? null,
      evaluatePolicy: true,
      policyName: options.measuredBootPolicy ?? 'example',
      memo: options.mbMemo,
    },
  });
  const events = [...round.events, ...runtimePolicyPcrEvents(evidence.runtimePolicy ?? null, round.claims, round.events)];
  const details = labelFailures(options.severityPolicy ?? DEFAULT_SEVERITY, events);
  return {
    valid: details.length === 0,
    claims: round.claims,
    failures: details.map((failure) => ({ type: failure.eventId, context: failure.context })),
    details,
  };
}

/**
 * A runtime policy is applied only through PCR 10: when one is given and the verified quote does not
 * cover PCR 10, the IMA list cannot be checked, so the evidence fails (`pcr_validation.missing_pcr_10`)
 * instead of passing unchecked, whatever the policy's `meta.generator` (Keylime 7.14 answers valid
 * there; runAttestationChecks already reports `missing_pcrs` when `requiresPcr10`).
 */
export function runtimePolicyPcrEvents(
  policy: CompiledRuntimePolicy | null,
  claims: AttestationClaims,
  events: readonly FailureEvent[],
): FailureEvent[] {
  if (policy === null || claims.quote === null || String(IMA_PCR) in claims.quote.pcrs) {
    return [];
  }
  const reported = events.some((e) => e.eventId === 'pcr_validation.missing_pcrs' && (e.context['data'] as unknown[] | undefined)?.includes(IMA_PCR));
  if (reported) {
    return [];
  }
  return [
    failureEvent(
      FailureComponent.PCR_VALIDATION,
      `missing_pcr_${IMA_PCR}`,
      `IMA PCR ${IMA_PCR} is missing in quote, but a runtime policy was given: the IMA list cannot be checked`,
      true,
    ),
  ];
}
