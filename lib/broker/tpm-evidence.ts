import { runAttestationChecks } from '../attestation/attestation-checks.js';
import { isQuoteHashAlg } from '../attestation/algorithms.js';
import { runtimePolicyPcrEvents } from '../attestation/evaluate-evidence.js';
import { initialImaReplayState } from '../ima/ima-replay-state.js';
import type { MeasuredBootMemo } from '../attestation/mb-check-memo.js';
import { ATTEST_MATCH_ALLOWANCE_NS } from './attest-match-allowance.js';
import type { CompiledNode } from './broker-node.js';

/**
 * `tee-evidence.primary_evidence` for tee `tpm` (docs/broker.md): the agent id the node claims, a
 * Keylime quote string whose qualifying data is the report data, and the logs the node's policies
 * need. Everything here is untrusted until `appraiseTpmEvidence` says otherwise.
 */
export interface UntrustedTpmEvidence {
  readonly agent_id: string;
  /** `r<b64 TPMS_ATTEST>:<b64 TPMT_SIGNATURE>:<b64 PCR blob>` (Keylime spec §3.1). */
  readonly quote: string;
  readonly hash_alg: string;
  /** ASCII IMA list from entry 0, when the node has a runtime policy or quotes PCR 10. */
  readonly ima_measurement_list?: string;
  /** base64 UEFI event log, when the node has a measured-boot refstate. */
  readonly mb_measurement_list?: string;
}

/** Upper bounds that keep a hostile evidence object from costing more than a real one. */
export const EVIDENCE_LIMITS = { quote: 64 * 1024, imaList: 16 * 1024 * 1024, mbLog: 4 * 1024 * 1024 } as const;

/** The AR4SI trustworthiness vector of an EAR token (draft-ietf-rats-ar4si §2.3): 2 = affirming, 0 = no claim. */
export interface TrustworthinessVector {
  readonly 'instance-identity': number;
  readonly configuration: number;
  readonly executables: number;
  readonly hardware: number;
}

export type TpmAppraisal =
  | { readonly ok: true; readonly vector: TrustworthinessVector; readonly pcrs: Readonly<Record<string, string>> }
  | { readonly ok: false; readonly reasons: readonly string[] };

/**
 * Appraises one-shot TPM evidence with the verifier's engine (`runAttestationChecks`, the path every
 * entry point shares): the quote must be signed by the node's registered AK over exactly `reportData`
 * (so a replayed quote, another TPM's quote or another session's quote fails), its PCR digest must
 * match, and the node's policies must hold — `tpm_policy` PCR values, the IMA list replayed from entry
 * 0 to the quoted PCR 10 against the runtime policy (a quote without PCR 10 is refused when the node
 * has one, whatever its `meta.generator`: `runtimePolicyPcrEvents`, as one-shot evidence), the boot log replayed to the quoted PCRs against
 * the refstate. No clock check (there is no previous quote; freshness is the session nonce) and no
 * PCR 16 binding (the tee-pubkey is bound through the report data instead). `mbMemo` (the caller's,
 * as the verifier's) reuses the boot-log check of a log and quoted PCR values seen before: a node sends
 * the same boot log until it reboots, and checking it was most of an exchange's CPU. The policies'
 * patterns are charged to `ATTEST_MATCH_ALLOWANCE_NS`: passing it refuses the evidence. Pure apart
 * from the memo; never throws for bad evidence.
 */
export function appraiseTpmEvidence(
  evidence: UntrustedTpmEvidence,
  reportData: Uint8Array,
  node: CompiledNode,
  mbMemo?: MeasuredBootMemo,
): TpmAppraisal {
  if (node.ak === null) {
    return { ok: false, reasons: ['the node has no registered AK'] };
  }
  if (!isQuoteHashAlg(evidence.hash_alg)) {
    return { ok: false, reasons: [`unsupported hash algorithm "${evidence.hash_alg}"`] };
  }
  const round = runAttestationChecks({
    quote: evidence.quote,
    nonce: reportData,
    hashAlg: evidence.hash_alg,
    akTpm: node.ak,
    tpmPolicy: node.tpmPolicy,
    bindPublicKey: null,
    previousClock: undefined,
    ima: { listText: evidence.ima_measurement_list, startEntry: 0, state: initialImaReplayState(), replay: true },
    runtimePolicy: node.runtimePolicy,
    imaKeyring: undefined,
    failOnTomtou: false,
    matchAllowanceNs: ATTEST_MATCH_ALLOWANCE_NS,
    mb: { eventLog: evidence.mb_measurement_list, refstate: node.mbRefstate, evaluatePolicy: true, policyName: 'example', memo: mbMemo },
  });
  const events = [...round.events, ...runtimePolicyPcrEvents(node.runtimePolicy, round.claims, round.events)];
  const reasons = events.map((event) => `${event.eventId}: ${describe(event.context)}`);
  if (node.mbRefstate !== null && (round.claims.measuredBoot === null || evidence.mb_measurement_list === undefined)) {
    reasons.push('measured_boot: the node has a refstate but sent no boot log that could be checked');
  }
  if (!round.quoteVerified || reasons.length > 0 || round.claims.quote === null) {
    return { ok: false, reasons: reasons.length > 0 ? reasons : ['quote did not verify'] };
  }
  return {
    ok: true,
    pcrs: round.claims.quote.pcrs,
    vector: {
      'instance-identity': 2,
      hardware: 2,
      configuration: node.mbRefstate !== null || node.tpmPolicy.pcrs.size > 0 ? 2 : 0,
      executables: node.runtimePolicy !== null ? 2 : 0,
    },
  };
}

function describe(context: Readonly<Record<string, unknown>>): string {
  const text = [context['message'], context['error'], context['reason']].filter((part) => typeof part === 'string').join(': ');
  return text.length > 0 ? text.slice(0, 300) : JSON.stringify(context).slice(0, 300);
}
