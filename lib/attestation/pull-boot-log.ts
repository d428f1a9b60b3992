import type { AgentPolicies } from './agent-policies.js';
import type { AgentAttestationState } from './agent-state.js';
import type { AttestationClaims, BootLogNotReusable } from './attestation-checks.js';
import { BOOT_LOG_RECHECK_SECONDS, sameBootLogContext, type BootLogContext, type BootLogMemo, type RememberedBootLog } from './boot-log-memo.js';
import { BOOT_LOG_PCR } from './internal/boot-log-reuse.js';
import type { EvaluateQuoteResult } from './internal/evaluate-quote.js';
import type { MeasuredBootPolicyName } from './internal/mb-check.js';
import { formatPcrMask, parseTpmPolicy } from './tpm-policy.js';
import { MEASUREDBOOT_PCRS } from '../tpm/keylime-profile.js';

/**
 * The boot log in the pull loop (issue 10): Keylime's agent sends `mb_measurement_list` only when PCR 0
 * is in the request's mask (spec §2), and the log does not change until the node reboots. After a round
 * that passed with a log, this process remembers it (`BootLogMemo`); later rounds ask without PCR 0 and
 * are judged with the remembered log while the TPM has not been reset or restarted
 * (`reuseBootLog`), and for at most `BOOT_LOG_RECHECK_SECONDS`. No hidden state: the memo is the
 * caller's, passed in, and kept in step with each decision here.
 */

/** The agent a round is for, as far as the engine needs it to choose the request. */
export interface PullAgent {
  readonly agentId: string;
  readonly policies: AgentPolicies;
  /** `tpm_policy.mask` in wire form. */
  readonly mask: string;
}

/**
 * How a round of an agent with a refstate and PCR 0 in its mask treats the boot log: `mask` is what to
 * ask for — without PCR 0 (so the agent sends no log, spec §2) when `remembered` stands in for it.
 */
export interface BootLogPlan {
  readonly agentId: string;
  readonly mask: string;
  /** What a log verified this round is remembered under (the bank comes with the reply). */
  readonly context: Omit<BootLogContext, 'hashAlg'>;
  readonly remembered: RememberedBootLog | undefined;
}

/**
 * The plan of a round (undefined when the agent has no refstate, PCR 0 is not in its mask or
 * `tpm_policy` names a value for it): ask without PCR 0 when `memo` holds a record made under the same
 * AK, bank, mask, refstate and measured-boot switches less than `BOOT_LOG_RECHECK_SECONDS` before
 * `now` (unix seconds), and the round does not start from START.
 * A record that no longer matches is dropped.
 */
export function planBootLog(
  state: AgentAttestationState,
  agent: PullAgent,
  memo: BootLogMemo,
  policyName: MeasuredBootPolicyName,
  fromStart: boolean,
  now: number,
): BootLogPlan | undefined {
  const refstate = agent.policies.mbRefstate;
  const tpmPolicy = parseTpmPolicy(agent.policies.tpmPolicy);
  if (refstate === null || (tpmPolicy.mask & (1 << BOOT_LOG_PCR)) === 0 || tpmPolicy.pcrs.has(BOOT_LOG_PCR)) {
    return undefined;
  }
  const context = {
    ak: agent.policies.akTpm,
    mask: agent.mask,
    refstate,
    measuredBootEvaluate: agent.policies.measuredBootEvaluate,
    policyName,
  };
  const plan = { agentId: agent.agentId, mask: agent.mask, context, remembered: undefined };
  const remembered = memo.recall(agent.agentId);
  if (remembered === undefined) {
    return plan;
  }
  if (fromStart || state.hashAlg === null || !sameBootLogContext(remembered.context, context, state.hashAlg)) {
    memo.forget(agent.agentId);
    return plan;
  }
  if (now < remembered.verifiedAt || now - remembered.verifiedAt >= BOOT_LOG_RECHECK_SECONDS) {
    // Asked in full: the pass remembers the log again, from now. A record verified "later than now" means
    // the wall clock stepped back: without this the bound would stretch by the size of the step.
    return plan;
  }
  return { ...plan, mask: formatPcrMask(tpmPolicy.mask & ~(1 << BOOT_LOG_PCR)), remembered };
}

/**
 * Keeps `memo` in step with a judged round and says what a repeated request asks for: a pass with a log
 * the measured-boot check replayed is remembered, a fail or a reply the remembered log could not stand
 * for drops the record. The returned plan asks with the full mask.
 */
export function settleBootLog(plan: BootLogPlan, memo: BootLogMemo, reply: unknown, result: EvaluateQuoteResult | BootLogNotReusable): BootLogPlan {
  if (result.verdict === 'pass') {
    const record = plan.remembered === undefined ? verifiedBootLog(plan, reply, result) : undefined;
    if (record !== undefined) {
      memo.remember(plan.agentId, record);
    }
  } else {
    memo.forget(plan.agentId);
  }
  return askInFull(plan);
}

/** The plan asking with the full mask: the agent sends its boot log, which is judged afresh. */
export function askInFull(plan: BootLogPlan): BootLogPlan {
  return { ...plan, mask: plan.context.mask, remembered: undefined };
}

/** The record of a round that passed with a boot log the measured-boot check replayed, or undefined. */
function verifiedBootLog(plan: BootLogPlan, reply: unknown, result: { readonly claims: AttestationClaims; readonly nextState: AgentAttestationState }): RememberedBootLog | undefined {
  const eventLog = (reply as { mb_measurement_list?: unknown }).mb_measurement_list;
  const { quote, measuredBoot } = result.claims;
  const hashAlg = result.nextState.hashAlg;
  if (typeof eventLog !== 'string' || eventLog === '' || quote === null || measuredBoot === null || hashAlg === null) {
    return undefined;
  }
  const bootPcrs = new Map<number, Uint8Array>();
  for (const pcr of MEASUREDBOOT_PCRS) {
    const hex = quote.pcrs[String(pcr)];
    if (hex !== undefined) {
      bootPcrs.set(pcr, new Uint8Array(Buffer.from(hex, 'hex')));
    }
  }
  if (!bootPcrs.has(BOOT_LOG_PCR)) {
    return undefined;
  }
  return {
    context: { ...plan.context, hashAlg },
    eventLog,
    bootPcrs,
    resetCount: quote.clockInfo.resetCount,
    restartCount: quote.clockInfo.restartCount,
    verifiedAt: result.nextState.lastSuccessfulAttestation ?? 0,
  };
}
