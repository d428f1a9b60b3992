import type { AgentPolicies } from '../agent-policies.js';
import type { AgentAttestationState } from '../agent-state.js';
import { runAttestationChecksStepwise, type AttestationClaims, type BootLogNotReusable } from '../attestation-checks.js';
import { finish, type Stepwise } from '../../ima/stepwise.js';
import type { RememberedBootLog } from '../boot-log-memo.js';
import type { Failure, FailureEvent } from './failure.js';
import { recordFailures } from './failure-record.js';
import type { MeasuredBootPolicyName } from './mb-check.js';
import type { MeasuredBootMemo } from '../mb-check-memo.js';
import { preCheckReply } from './pre-checks.js';
import { policyRoundInput } from './round-parts.js';
import { checkQuoteReplyShape, isFailureEvent, type AgentQuoteReply } from './quote-reply.js';
import { compileSeverityPolicy, labelFailures, type SeverityPolicy } from '../severity.js';
import { nextOperationalState } from './state-machine.js';
import { parseTpmPolicy } from '../tpm-policy.js';
import type { SignatureVerdict } from '../../tpm/signature-verdict.js';

export interface EvaluateQuoteOptions {
  /** Compiled `severity_labels` + `severity_policy` (default: Keylime's, every event "emergency"). */
  readonly severityPolicy?: SeverityPolicy;
  /** Policy that judges the refstate (default `example`, the one lib/mb implements). */
  readonly measuredBootPolicy?: MeasuredBootPolicyName;
  /** Report IMA violation (ToMToU) entries as `ima.validation.tomtou` (default false). */
  readonly failOnTomtou?: boolean;
  /** Compare the quote's TPM clock with the last passing quote's (default true; spec §7.3). */
  readonly checkClock?: boolean;
  /** The caller's measured-boot memo (the verifier service owns one); absent: every log is checked afresh. */
  readonly mbMemo?: MeasuredBootMemo;
  /** What one round may spend running the policies' patterns (`RoundInput.matchAllowanceNs`); absent: not bounded. */
  readonly matchAllowanceNs?: number;
}

export interface EvaluateQuoteInput {
  /** The agent's state from the previous round (`initialAgentState()` for a new agent). */
  readonly state: AgentAttestationState;
  readonly policies: AgentPolicies;
  /** The agent's `results` from `GET /quotes/integrity`; its shape is checked here too. */
  readonly reply: AgentQuoteReply;
  /** The nonce sent with the request; its ASCII bytes are the qualifying data. */
  readonly nonce: string;
  /** Unix seconds: stored as `lastReceivedQuote` (and `lastSuccessfulAttestation` on a pass). */
  readonly now: number;
  readonly options?: EvaluateQuoteOptions;
  /** The AK signature verified ahead (`verifyQuoteSignatureAhead`); used only if it is about this reply's quote and the AK. */
  readonly signatureVerdict?: SignatureVerdict;
  /** The boot log this reply was asked without (PCR 0 left out of the mask): `RoundInput.rememberedBoot`. */
  readonly rememberedBoot?: RememberedBootLog;
}

export interface EvaluateQuoteResult {
  readonly verdict: 'pass' | 'fail';
  /** Empty on a pass. */
  readonly failures: readonly Failure[];
  /** What to persist: IMA progress, clock info, counters, severity, operational state. */
  readonly nextState: AgentAttestationState;
  readonly claims: AttestationClaims;
  /** The pull loop must stop polling (irrecoverable failure or maximum severity; spec §6.2.6). */
  readonly stopPolling: boolean;
  /** V must be (re)delivered: the NK public key is new or changed (spec §6.2 step 3). */
  readonly provideV: boolean;
}

const NO_CLAIMS: AttestationClaims = { quote: null, ima: null, measuredBoot: null };
const DEFAULT_SEVERITY = compileSeverityPolicy();

/**
 * One pull-mode attestation round: `(agent state, agent reply) → (verdict, failures, next state)`.
 * Pure — no I/O, no clock reads, nothing mutated. Runs, in Keylime's order (spec §7): the reply shape
 * and pre-checks (NK key present or cached, algorithms accepted, IMA offset), the quote (AK signature,
 * nonce, pcrDigest, TPM clock against the last passing quote), PCR 16 binding of the NK key, IMA
 * replay from the stored incremental state against the runtime policy, boot log replay and refstate
 * (`once`: while `attestationCount` is 0; `always`), `tpm_policy` values and missing PCRs.
 *
 * Next state: algorithms and `lastReceivedQuote` always; the IMA state advances when the IMA check
 * passed and resets to entry 0 after any IMA failure; on a pass `attestationCount`,
 * `lastSuccessfulAttestation`, clock info and the cached NK key are updated; on a fail `severityLevel`
 * and `lastEventId` change only for a more severe failure. `operationalState` follows
 * `nextOperationalState` with `quote_passed` / `quote_failed`.
 *
 * With `rememberedBoot`, a verified quote the remembered log cannot stand for (`reuseBootLog`) is not
 * judged: `inconclusive`, and the caller runs a full round.
 *
 * Throws only for the caller's errors: an invalid `tpm_policy` (`InvalidParameterValue`) or a stored
 * IMA state of the wrong shape. Bad evidence never throws; it fails the round.
 */
export function evaluateQuote(input: EvaluateQuoteInput & { readonly rememberedBoot?: undefined }): EvaluateQuoteResult;
export function evaluateQuote(input: EvaluateQuoteInput): EvaluateQuoteResult | BootLogNotReusable;
export function evaluateQuote(input: EvaluateQuoteInput): EvaluateQuoteResult | BootLogNotReusable {
  return finish(evaluateQuoteStepwise(input));
}

/** `evaluateQuote`, pausing between chunks of the boot log's events and of the IMA list's lines (`Stepwise`): the same result. */
export function* evaluateQuoteStepwise(input: EvaluateQuoteInput): Stepwise<EvaluateQuoteResult | BootLogNotReusable> {
  const { state, policies, options = {} } = input;
  const severity = options.severityPolicy ?? DEFAULT_SEVERITY;
  const tpmPolicy = parseTpmPolicy(policies.tpmPolicy);

  const shaped = checkQuoteReplyShape(input.reply as unknown);
  if (isFailureEvent(shaped)) {
    return failed({ ...state, lastReceivedQuote: input.now }, [shaped], NO_CLAIMS, severity);
  }
  const reply = shaped;
  const withAlgs = { ...state, lastReceivedQuote: input.now, hashAlg: reply.hash_alg, encAlg: reply.enc_alg, signAlg: reply.sign_alg };
  const pre = preCheckReply(reply, policies, {
    publicKey: state.publicKey,
    boottime: state.boottime,
    nextImaEntry: state.ima.nextEntry,
  });
  if (!pre.ok) {
    return failed(withAlgs, [pre.event], NO_CLAIMS, severity);
  }
  const round = yield* runAttestationChecksStepwise({
    quote: reply.quote,
    nonce: Buffer.from(input.nonce, 'utf8'),
    hashAlg: pre.hashAlg,
    signAlg: reply.sign_alg,
    bindPublicKey: pre.publicKey,
    previousClock: options.checkClock === false ? undefined : state.tpmClockInfo,
    ...(input.signatureVerdict === undefined ? {} : { signatureVerdict: input.signatureVerdict }),
    ...(input.rememberedBoot === undefined ? {} : { rememberedBoot: input.rememberedBoot }),
    ...policyRoundInput(
      state,
      policies,
      tpmPolicy,
      {
        imaList: reply.ima_measurement_list,
        imaStartEntry: reply.ima_measurement_list_entry ?? 0,
        imaMode: pre.ima === 'continue' ? 'continue' : pre.ima === 'skip' ? 'skip' : 'reset',
        eventLog: reply.mb_measurement_list,
      },
      options,
    ),
  });
  if ('verdict' in round) {
    return round;
  }
  const events = pre.events.length === 0 ? round.events : [...pre.events, ...round.events];
  if (events.length > 0) {
    return failed({ ...withAlgs, boottime: reply.boottime ?? 0, ima: round.imaState }, events, round.claims, severity);
  }
  const provideV = pre.publicKey !== state.publicKey;
  const nextState = {
    ...withAlgs,
    boottime: reply.boottime ?? 0,
    ima: round.imaState,
    attestationCount: state.attestationCount + 1,
    lastSuccessfulAttestation: input.now,
    tpmClockInfo: round.claims.quote === null ? state.tpmClockInfo : round.claims.quote.clockInfo,
    publicKey: pre.publicKey,
    operationalState: nextOperationalState(state.operationalState, { type: 'quote_passed', provideV }),
  };
  return { verdict: 'pass', failures: [], nextState, claims: round.claims, stopPolling: false, provideV };
}

/** The state and failures of a failed round (severity recorded, `quote_failed`); push evidence uses it too. */
export function failed(
  state: AgentAttestationState,
  events: readonly FailureEvent[],
  claims: AttestationClaims,
  severity: SeverityPolicy,
): EvaluateQuoteResult {
  const failures = labelFailures(severity, events);
  const record = recordFailures(state, failures, severity);
  const nextState: AgentAttestationState = {
    ...state,
    severityLevel: record.severityLevel,
    lastEventId: record.lastEventId,
    operationalState: nextOperationalState(state.operationalState, { type: 'quote_failed' }),
  };
  return { verdict: 'fail', failures, nextState, claims, stopPolling: record.stopPolling, provideV: false };
}
