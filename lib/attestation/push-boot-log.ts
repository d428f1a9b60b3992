import { createHash } from 'node:crypto';
import type { AgentPolicies } from './agent-policies.js';
import { MAX_REMEMBERED_LOG, sameBootLogContext, type BootLogContext, type BootLogMemo, type HeldPushBootLog } from './boot-log-memo.js';
import type { MeasuredBootPolicyName } from './internal/mb-check.js';
import type { PushChoice, PushEvidence } from './push-decision.js';
import { formatPcrMask } from './tpm-policy.js';

/**
 * The boot log in the push model (issues 10 and 13): after an attestation that passed with a
 * `uefi_log`, the verifier remembers it (`BootLogMemo`, and the database: `StoredPushBootLog`) with the
 * `system_info.boot_time` it came with; phase 1 of a later attestation with the same boot time, AK,
 * bank, PCR selection, refstate and measured-boot switches leaves the `uefi_log` out of
 * `evidence_requested`. The quote still covers every boot PCR (PCR 0 too), so phase 2 replays the
 * remembered log against all of them: a changed boot PCR fails as it would with the log sent. Pure,
 * with the memo passed in.
 */

/** What phase 1 needs to consult the memo for one agent. */
export interface PushBootLogs {
  readonly memo: BootLogMemo;
  readonly agentId: string;
  /** The agent's current enrolment: a record held for another one is not used (`HeldPushBootLog.enrolment`). */
  readonly enrolment: string;
  readonly policyName: MeasuredBootPolicyName;
}

/** The agent a log is held for: its id, its enrolment's number (a re-enrolment's differs) and its AK. */
export interface HoldingAgent {
  readonly agentId: string;
  readonly enrolment: string;
  readonly akTpm: string;
}

/**
 * A held log as the database keeps it, for any verifier process: the context's AK, refstate and
 * switches as a digest (`pushBootLogDigest`: the objects themselves are this process's), bank and mask
 * as they are.
 */
export interface StoredPushBootLog {
  readonly bootTime: number;
  readonly hashAlg: string;
  readonly mask: string;
  readonly contextSha256: string;
  readonly eventLog: string;
}

/** True when `logs.memo` holds a log verified for this very boot and context; a record that does not match is dropped. */
export function bootLogHeld(logs: PushBootLogs, policies: AgentPolicies, akTpm: string, hashAlg: string, pcrs: readonly number[], bootTime: number | null): boolean {
  const context = pushContext(policies, akTpm, hashAlg, maskOf(pcrs), logs.policyName);
  const record = logs.memo.recallPush(logs.agentId);
  if (record === undefined || context === undefined || bootTime === null) {
    return false;
  }
  if (record.enrolment === logs.enrolment && record.bootTime === bootTime && sameBootLogContext(record.context, context, context.hashAlg)) {
    return true;
  }
  logs.memo.forget(logs.agentId);
  return false;
}

/**
 * Phase 2 of an attestation whose `uefi_log` phase 1 left out (`choice.uefiLogHeld`): the remembered
 * log for the same enrolment, boot time, AK, bank and PCR selection, or undefined when the memo holds
 * none (another process chose, or this one restarted or forgot it: then the database's, `heldFromStore`).
 */
export function heldBootLog(memo: BootLogMemo, agent: HoldingAgent, choice: PushChoice): string | undefined {
  const record = memo.recallPush(agent.agentId);
  if (record === undefined || record.enrolment !== agent.enrolment || choice.bootTime === null || record.bootTime !== choice.bootTime) {
    return undefined;
  }
  const { context } = record;
  return context.ak === agent.akTpm && context.hashAlg === choice.hashAlg && context.mask === maskOf(choice.pcrs) ? record.eventLog : undefined;
}

/**
 * The record to remember after a stored passing verdict on evidence that carried the `uefi_log` phase 1
 * asked for (the verdict replayed it against every quoted boot PCR), or undefined when it cannot stand
 * for a later attestation (no boot time, no log, no refstate) or is longer than `MAX_REMEMBERED_LOG`
 * (neither held nor stored: asked for each time). A fail drops the record (`HeldBootLogs.settle`).
 */
export function pushBootLogToHold(policyName: MeasuredBootPolicyName, policies: AgentPolicies, agent: Omit<HoldingAgent, 'agentId'>, choice: PushChoice, evidence: PushEvidence): HeldPushBootLog | undefined {
  const context = pushContext(policies, agent.akTpm, choice.hashAlg, maskOf(choice.pcrs), policyName);
  const log = evidence.uefiLog;
  if (choice.bootTime === null || log === undefined || log === '' || log.length > MAX_REMEMBERED_LOG || context === undefined) {
    return undefined;
  }
  return { kind: 'push', enrolment: agent.enrolment, context, eventLog: log, bootTime: choice.bootTime };
}

/** `held` as the database keeps it. */
export function storedPushBootLog(held: HeldPushBootLog, akTpm: string): StoredPushBootLog {
  const { context } = held;
  return { bootTime: held.bootTime, hashAlg: context.hashAlg, mask: context.mask, contextSha256: pushBootLogDigest(akTpm, context), eventLog: held.eventLog };
}

/**
 * A log stored for `agent`'s enrolment (`PushBootLogStore.read` reads no other) as this process's
 * record, when it was verified under the agent's AK, refstate and switches as they are now (the digest
 * of the current ones matches); undefined otherwise (a policy or switch changed since): it is then not used.
 */
export function heldFromStore(stored: StoredPushBootLog, policyName: MeasuredBootPolicyName, policies: AgentPolicies, agent: Omit<HoldingAgent, 'agentId'>): HeldPushBootLog | undefined {
  const context = pushContext(policies, agent.akTpm, stored.hashAlg, stored.mask, policyName);
  if (context === undefined || pushBootLogDigest(agent.akTpm, context) !== stored.contextSha256) {
    return undefined;
  }
  return { kind: 'push', enrolment: agent.enrolment, context, eventLog: stored.eventLog, bootTime: stored.bootTime };
}

/**
 * SHA-256 of the AK (`ak_tpm` as enrolled), the refstate (its JSON: the parsed `mb_policy`), the
 * `measured_boot_evaluate` switch and the measured-boot policy name — what a process compares by
 * identity in its memo, in a form another process can compare.
 */
function pushBootLogDigest(akTpm: string, context: BootLogContext): string {
  const parts = [akTpm, context.refstate, context.measuredBootEvaluate, context.policyName];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

function pushContext(policies: AgentPolicies, akTpm: string, hashAlg: string, mask: string, policyName: MeasuredBootPolicyName): BootLogContext | undefined {
  const refstate = policies.mbRefstate;
  if (refstate === null) {
    return undefined;
  }
  return { ak: akTpm, hashAlg, mask, refstate, measuredBootEvaluate: policies.measuredBootEvaluate, policyName };
}

function maskOf(pcrs: readonly number[]): string {
  return formatPcrMask(pcrs.reduce((mask, pcr) => mask | (1 << pcr), 0));
}
