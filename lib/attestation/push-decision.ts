import type { AgentPolicies } from './agent-policies.js';
import type { AgentAttestationState } from './agent-state.js';
import { requiresPcr10, runAttestationChecksStepwise, type RoundResult } from './attestation-checks.js';
import { failed, type EvaluateQuoteOptions } from './internal/evaluate-quote.js';
import { capabilitiesToKeep, chooseCertificationKey } from './internal/push-key-choice.js';
import { policyRoundInput, type ImaRoundMode } from './internal/round-parts.js';
import type { HistoryRow } from './history-row.js';
import { storedFailures } from './stored-failures.js';
import { bootLogHeld, type PushBootLogs } from './push-boot-log.js';
import { OperationalState } from './operational-state.js';
import type { PushCapabilities, PushChoice } from './push-choice.js';
import type { SeverityPolicy } from './severity.js';
import { parseTpmPolicy } from './tpm-policy.js';
import { parsePcrBlob } from '../tpm/pcr-blob.js';
import { formatQuoteString } from '../tpm/quote-string.js';
import { resolveHash } from '../tpm/constants.js';
import { DATA_PCR, IMA_PCR, MEASUREDBOOT_PCRS } from '../tpm/keylime-profile.js';
import type { Stepwise } from '../ima/stepwise.js';

/**
 * The push model's decisions (keylime-protocol §10.3–§10.5), pure: which evidence to ask a push agent
 * for, whether the evidence it sent answers that request, the verdict on it — through the same
 * `runAttestationChecks` and policy inputs as a pull round (silence and failed stores:
 * `push-failure-decision.ts`). The verifier's push routes only move bytes and store what this returns.
 */

export type { OfferedKey, PushCapabilities, PushChoice } from './push-choice.js';

/**
 * Capabilities or evidence refused. `missingLog`: the agent offers no log its policy needs — a lasting
 * fault of the node (a log grown past what its agent sends, one it cannot read), not of one request.
 */
export type PushRefusal = { readonly ok: false; readonly detail: string; readonly missingLog?: 'uefi_log' | 'ima_log' };

/**
 * Phase 1 (Keylime `verification/tpm_engine.py`): the required PCRs are the `tpm_policy` PCRs with
 * values and those of its mask (PCR 16 aside: no NK key binds it in push mode), the measured-boot PCRs
 * with a refstate, and PCR 10 with a real runtime policy. Hash and scheme are the first of the agent's
 * accept lists the agent offers (and its key allows), the key as `chooseCertificationKey` picks it;
 * the key chosen is only repeated to the agent: the quote is always verified against the enrolled
 * `ak_tpm` (`decidePushEvidence`). The IMA offset continues
 * the stored replay when the boot time is unchanged, restarts at 0 after a reboot, and is refused when
 * the boot time went back. Unlike Keylime, a quote is always asked for (fail closed): with nothing
 * required it covers PCR 0. With `bootLogs`, the `uefi_log` is left out when that memo holds the log of
 * this boot (`bootLogHeld`).
 */
export function choosePushEvidence(
  state: AgentAttestationState,
  policies: AgentPolicies,
  akTpm: string,
  offered: PushCapabilities,
  bootLogs?: PushBootLogs,
): { readonly ok: true; readonly choice: PushChoice } | PushRefusal {
  const quote = offered.quote;
  if (quote.componentVersion !== '2.0') {
    return refuse('tpm_quote component_version must be "2.0"');
  }
  for (const bank of Object.keys(quote.availableSubjects)) {
    if (!quote.hashAlgorithms.includes(bank)) {
      return refuse("Attribute 'evidence' may only contain PCR banks for the given hash algorithms.");
    }
  }
  const chosen = chooseCertificationKey(quote, policies, akTpm);
  if (chosen === undefined) {
    return refuse('no certification key offered allows a hash algorithm and a signature scheme accepted for this agent');
  }
  const { key, hashAlg, signatureScheme } = chosen;
  const pcrs = requiredPcrs(policies);
  const bank = quote.availableSubjects[hashAlg] ?? [];
  const missing = pcrs.filter((pcr) => !bank.includes(pcr));
  if (missing.length > 0) {
    return refuse(`the ${hashAlg} bank does not offer PCR ${missing.join(', ')}`);
  }
  const uefiLog = policies.mbRefstate !== null;
  if (uefiLog && offered.uefiLog === undefined) {
    return { ...refuse('a measured-boot policy is enrolled but no uefi_log is offered'), missingLog: 'uefi_log' };
  }
  const ima = chooseImaOffset(state, pcrs.includes(IMA_PCR), offered);
  if (!ima.ok) {
    return ima;
  }
  const held = uefiLog && bootLogs !== undefined && bootLogHeld(bootLogs, policies, akTpm, hashAlg, pcrs, offered.bootTime);
  const selectedSubjects = Object.fromEntries(Object.keys(quote.availableSubjects).map((b) => [b, b === hashAlg ? pcrs : null]));
  return {
    ok: true,
    choice: {
      hashAlg,
      signatureScheme,
      pcrs,
      selectedSubjects,
      certificationKey: key.raw,
      capabilities: capabilitiesToKeep(offered.received, key),
      uefiLog: uefiLog && !held,
      ...(held ? { uefiLogHeld: true } : {}),
      imaStartingOffset: ima.offset,
      imaEntryCount: ima.offset === null ? null : (offered.imaLog?.entryCount ?? null),
      imaMode: ima.mode,
      bootTime: offered.bootTime,
    },
  };
}

/** The PCRs a push quote must cover (see `choosePushEvidence`). */
export function requiredPcrs(policies: AgentPolicies): number[] {
  const policy = parseTpmPolicy(policies.tpmPolicy);
  const pcrs = new Set<number>();
  for (const [pcr, values] of policy.pcrs) {
    if (values.length > 0) pcrs.add(pcr);
  }
  for (let pcr = 0; pcr < 24; pcr += 1) {
    if ((policy.mask & (1 << pcr)) !== 0) pcrs.add(pcr);
  }
  if (policies.mbRefstate !== null) {
    for (const pcr of MEASUREDBOOT_PCRS) pcrs.add(pcr);
  }
  if (requiresPcr10(policies.runtimePolicy, policies.imaKeyring)) {
    pcrs.add(IMA_PCR);
  }
  pcrs.delete(DATA_PCR);
  if (pcrs.size === 0) pcrs.add(0);
  return [...pcrs].sort((a, b) => a - b);
}

function chooseImaOffset(
  state: AgentAttestationState,
  wanted: boolean,
  offered: PushCapabilities,
): { readonly ok: true; readonly offset: number | null; readonly mode: ImaRoundMode } | PushRefusal {
  if (!wanted) {
    return { ok: true, offset: null, mode: 'skip' };
  }
  if (offered.imaLog === undefined) {
    return { ...refuse('PCR 10 is required but no ima_log is offered'), missingLog: 'ima_log' };
  }
  if (offered.bootTime === null) {
    return refuse('system_info.boot_time is required when an IMA log is expected');
  }
  if (state.boottime !== 0 && offered.bootTime < state.boottime) {
    return refuse('system_info.boot_time is earlier than the previous attestation\'s');
  }
  if (state.boottime === offered.bootTime && state.ima.nextEntry > 0) {
    return { ok: true, offset: state.ima.nextEntry, mode: 'continue' };
  }
  return { ok: true, offset: 0, mode: 'reset' };
}

/** Phase 2's evidence, decoded from the PATCH body. */
export interface PushEvidence {
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
  readonly subjectData: Uint8Array;
  /** base64 binary_bios_measurements, when sent. */
  readonly uefiLog: string | undefined;
  /** IMA lines from the starting offset, when sent. */
  readonly imaEntries: string | undefined;
}

/**
 * The checks of §10.4 that refuse evidence before judging it (HTTP 422): the IMA text, when sent, has
 * at least the lines the agent announced, and the PCR blob covers every requested PCR in the chosen
 * bank. A log asked for and not sent is no refusal: the evidence is judged without it and fails as a
 * pull quote without its log does (`unused_pcr`), so an agent that leaves it out is not refused until
 * its silence timeout. §10.4's upper bound on IMA lines applies to an `entry_count` asked
 * for in phase 1, and ironlime asks none: any further lines are replayed against PCR 10 like the rest.
 * The blob is untrusted here; the quote's digest binds it when the evidence is judged.
 */
export function checkPushEvidence(choice: PushChoice, evidence: PushEvidence): PushRefusal | undefined {
  if (choice.imaStartingOffset !== null && evidence.imaEntries !== undefined) {
    const lines = countLines(evidence.imaEntries);
    const least = (choice.imaEntryCount ?? 0) - choice.imaStartingOffset;
    if (lines < least) {
      return refuse(`the ima_log has ${lines} entries, fewer than the ${least} announced`);
    }
  }
  let quoted: ReadonlyMap<number, Uint8Array> | undefined;
  try {
    const algId = resolveHash(choice.hashAlg)?.algId;
    quoted = parsePcrBlob(evidence.subjectData).untrustedBanks.find((b) => b.hashAlg === algId)?.pcrs;
  } catch {
    return refuse('subject_data is not a PCR blob');
  }
  const missing = choice.pcrs.filter((pcr) => quoted?.has(pcr) !== true);
  if (missing.length > 0) {
    return refuse(`the quote does not cover the requested PCR ${missing.join(', ')} of ${choice.hashAlg}`);
  }
  return undefined;
}

/** Phase 2's verdict. */
export interface PushVerdict {
  readonly verdict: 'pass' | 'fail';
  readonly state: AgentAttestationState;
  readonly history: HistoryRow;
  /** Keylime's `failure_reason`: `broken_evidence_chain` or `policy_violation`; null on a pass. */
  readonly failureReason: 'broken_evidence_chain' | 'policy_violation' | null;
}

/** The engine settings of push evidence: the pull round's, with the severity policy required. */
export type PushEngineOptions = EvaluateQuoteOptions & { readonly severityPolicy: SeverityPolicy };

export interface PushEvidenceInput {
  readonly state: AgentAttestationState;
  readonly policies: AgentPolicies;
  readonly choice: PushChoice;
  readonly challenge: Uint8Array;
  readonly evidence: PushEvidence;
  /** Unix seconds. */
  readonly now: number;
  readonly options: PushEngineOptions;
}

/** Events that mean the evidence itself does not hold together (Keylime's `broken_evidence_chain`). */
const BROKEN_CHAIN = /^(qoute_validation\.quote_validation|measured_boot\.invalid_pcr_\d+|ima\.pcr_mismatch)$/;

/**
 * Judges push evidence with the pull round's checks (spec §10.4): the quote rebuilt as Keylime's
 * `r<m>:<s>:<p>` string, the challenge (its bytes or its base64 text) as qualifying data, the chosen
 * hash and scheme pinned, no PCR 16 binding, the clock compared with the last passing quote, the IMA
 * state continued or restarted as chosen in phase 1. A push agent that failed stays failed until it
 * is enrolled again (Keylime without `auto_recover_attestation_failures`): its later evidence is
 * judged and recorded, but a pass does not make it trusted. Stepwise: it pauses between chunks of the
 * boot log's events and of the IMA list's lines (an agent's evidence may hold a whole log of tens of
 * MiB), so the verifier judges it a slice at a time, as it judges a pull reply; `finish` runs it to its
 * end at once.
 */
export function* decidePushEvidence(input: PushEvidenceInput): Stepwise<PushVerdict> {
  const { state, policies, choice, evidence, options } = input;
  const received = { ...state, lastReceivedQuote: input.now, hashAlg: choice.hashAlg, signAlg: choice.signatureScheme };
  // No remembered boot log goes in (push sends the log or none), so the checks always reach a result.
  const round = (yield* runAttestationChecksStepwise({
    quote: formatQuoteString({ attest: evidence.message, signature: evidence.signature, pcrBlob: evidence.subjectData }),
    // The challenge's bytes (Keylime's Python agent, ours) or its base64 text (the Rust agent quotes that).
    nonce: input.challenge,
    alternativeNonce: new Uint8Array(Buffer.from(Buffer.from(input.challenge).toString('base64'), 'ascii')),
    hashAlg: choice.hashAlg as never,
    signAlg: choice.signatureScheme,
    bindPublicKey: null,
    previousClock: options.checkClock === false ? undefined : state.tpmClockInfo,
    ...policyRoundInput(
      state,
      policies,
      parseTpmPolicy(policies.tpmPolicy),
      { imaList: evidence.imaEntries ?? null, imaStartEntry: choice.imaStartingOffset ?? 0, imaMode: choice.imaMode, eventLog: evidence.uefiLog ?? null },
      options,
    ),
  })) as RoundResult;
  const after = { ...received, boottime: choice.bootTime ?? state.boottime, ima: round.imaState };
  const base = { nonce: Buffer.from(input.challenge).toString('base64'), imaMlEntry: choice.imaStartingOffset, imaEntriesReceived: evidence.imaEntries === undefined ? null : countLines(evidence.imaEntries) };
  if (round.events.length > 0) {
    const result = failed(after, round.events, round.claims, options.severityPolicy);
    const broken = round.events.some((e) => BROKEN_CHAIN.test(e.eventId));
    return {
      verdict: 'fail',
      state: { ...result.nextState, operationalState: OperationalState.INVALID_QUOTE },
      history: { ...base, outcome: 'fail', ...storedFailures(result.failures) },
      failureReason: broken ? 'broken_evidence_chain' : 'policy_violation',
    };
  }
  const stillFailed = state.operationalState !== OperationalState.GET_QUOTE && state.operationalState !== OperationalState.START;
  const next: AgentAttestationState = {
    ...after,
    attestationCount: state.attestationCount + 1,
    lastSuccessfulAttestation: input.now,
    tpmClockInfo: round.claims.quote?.clockInfo ?? state.tpmClockInfo,
    operationalState: stillFailed ? state.operationalState : OperationalState.GET_QUOTE,
  };
  return { verdict: 'pass', state: next, history: { ...base, outcome: 'pass', failures: [] }, failureReason: null };
}

function refuse(detail: string): PushRefusal {
  return { ok: false, detail };
}

/** Non-empty lines, counted without splitting the text. */
export function countLines(text: string): number {
  let lines = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    if (end > start && text.slice(start, end).trim() !== '') lines += 1;
    start = end + 1;
  }
  return lines;
}
