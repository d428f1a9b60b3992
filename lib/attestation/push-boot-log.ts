import type { AgentPolicies } from './agent-policies.js';
import { sameBootLogContext, type BootLogContext, type BootLogMemo } from './boot-log-memo.js';
import type { MeasuredBootPolicyName } from './internal/mb-check.js';
import type { PushChoice, PushEvidence, PushVerdict } from './push-decision.js';
import { formatPcrMask } from './tpm-policy.js';

/**
 * The boot log in the push model (issues 10 and 13): after an attestation that passed with a
 * `uefi_log`, the verifier process remembers it (`BootLogMemo`) with the `system_info.boot_time` it
 * came with; phase 1 of a later attestation with the same boot time, AK, bank, PCR selection, refstate
 * and measured-boot switches leaves the `uefi_log` out of `evidence_requested`. The quote still covers
 * every boot PCR (PCR 0 too), so phase 2 replays the remembered log against all of them: a changed
 * boot PCR fails as it would with the log sent. Pure, with the memo passed in.
 */

/** What phase 1 needs to consult the memo for one agent. */
export interface PushBootLogs {
  readonly memo: BootLogMemo;
  readonly agentId: string;
  readonly policyName: MeasuredBootPolicyName;
}

/** True when `logs.memo` holds a log verified for this very boot and context; a record that does not match is dropped. */
export function bootLogHeld(logs: PushBootLogs, policies: AgentPolicies, akTpm: string, hashAlg: string, pcrs: readonly number[], bootTime: number | null): boolean {
  const context = pushContext(policies, akTpm, hashAlg, pcrs, logs.policyName);
  const record = logs.memo.recall(logs.agentId);
  if (record === undefined || context === undefined || bootTime === null) {
    return false;
  }
  if (record.bootTime === bootTime && sameBootLogContext(record.context, context, context.hashAlg)) {
    return true;
  }
  logs.memo.forget(logs.agentId);
  return false;
}

/**
 * Phase 2 of an attestation whose `uefi_log` phase 1 left out (`choice.uefiLogHeld`): the remembered
 * log for the same boot time, AK, bank and PCR selection, or undefined when this process holds none
 * (another process chose, or this one restarted or forgot it): the evidence must then not be judged.
 */
export function heldBootLog(memo: BootLogMemo, agentId: string, akTpm: string, choice: PushChoice): string | undefined {
  const record = memo.recall(agentId);
  if (record === undefined || choice.bootTime === null || record.bootTime !== choice.bootTime) {
    return undefined;
  }
  const { context } = record;
  return context.ak === akTpm && context.hashAlg === choice.hashAlg && context.mask === maskOf(choice.pcrs) ? record.eventLog : undefined;
}

/**
 * After a stored passing verdict on evidence that carried the `uefi_log` phase 1 asked for: the log is
 * remembered with its boot time (the verdict replayed it against every quoted boot PCR). A fail drops
 * the record (`HeldBootLogs.settle`).
 */
export function rememberPushBootLog(logs: PushBootLogs, policies: AgentPolicies, akTpm: string, choice: PushChoice, evidence: PushEvidence, verdict: PushVerdict): void {
  const context = pushContext(policies, akTpm, choice.hashAlg, choice.pcrs, logs.policyName);
  const clock = verdict.state.tpmClockInfo;
  if (choice.bootTime === null || evidence.uefiLog === undefined || evidence.uefiLog === '' || context === undefined || clock === null) {
    return;
  }
  logs.memo.remember(logs.agentId, {
    context,
    eventLog: evidence.uefiLog,
    bootPcrs: new Map(),
    resetCount: clock.resetCount,
    restartCount: clock.restartCount,
    verifiedAt: verdict.state.lastSuccessfulAttestation ?? 0,
    bootTime: choice.bootTime,
  });
}

function pushContext(policies: AgentPolicies, akTpm: string, hashAlg: string, pcrs: readonly number[], policyName: MeasuredBootPolicyName): BootLogContext | undefined {
  const refstate = policies.mbRefstate;
  if (refstate === null) {
    return undefined;
  }
  return { ak: akTpm, hashAlg, mask: maskOf(pcrs), refstate, measuredBootEvaluate: policies.measuredBootEvaluate, policyName };
}

function maskOf(pcrs: readonly number[]): string {
  return formatPcrMask(pcrs.reduce((mask, pcr) => mask | (1 << pcr), 0));
}
