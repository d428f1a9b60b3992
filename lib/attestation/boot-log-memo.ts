import type { MbRefstate } from '../mb/mb-refstate.js';
import type { AgentPolicies, MeasuredBootEvaluate } from './agent-policies.js';
import type { MeasuredBootPolicyName } from './internal/mb-check.js';

/** Agents remembered by default: a verifier process polls a few thousand. */
const DEFAULT_CAPACITY = 16_384;

/** What a remembered boot log was verified under; a round reuses it only when all of it is unchanged. */
export interface BootLogContext {
  /** The agent's AK as the polled agent holds it: compared by identity (a reload makes a new one). */
  readonly ak: AgentPolicies['akTpm'];
  /** The quote's bank. */
  readonly hashAlg: string;
  /** `tpm_policy.mask` in wire form, with PCR 0. */
  readonly mask: string;
  /** Compared by identity (a changed policy is a new object). */
  readonly refstate: MbRefstate;
  readonly measuredBootEvaluate: MeasuredBootEvaluate;
  readonly policyName: MeasuredBootPolicyName;
}

/**
 * A boot log that passed the measured-boot check in a round that passed, with what the TPM said of
 * that boot: the quoted boot PCRs (PCR 0 among them) in the quote's bank and the quote's resetCount and
 * restartCount. While neither count changes the TPM has not been reset or restarted, so PCR 0 still
 * holds this boot's value or an extension of it — never a reset one.
 */
export interface RememberedBootLog {
  readonly context: BootLogContext;
  /** The verified `mb_measurement_list`, shared (not copied). */
  readonly eventLog: string;
  /** Quoted values of MEASUREDBOOT_PCRS, by PCR. */
  readonly bootPcrs: ReadonlyMap<number, Uint8Array>;
  readonly resetCount: number;
  readonly restartCount: number;
  /** Push: the `system_info.boot_time` (Unix seconds) the log was sent with; absent for pull. */
  readonly bootTime?: number;
}

/**
 * The boot logs this verifier process verified, one per agent (least recently used go first) — an
 * explicit object the verifier service owns and hands to the engine (`PullSettings.bootLogs`); the
 * engine keeps no hidden state. A process that restarts starts empty: every agent's first round here
 * carries its log again.
 */
export class BootLogMemo {
  private readonly byAgent = new Map<string, RememberedBootLog>();

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  /** The record of `agentId`, if any. */
  recall(agentId: string): RememberedBootLog | undefined {
    const record = this.byAgent.get(agentId);
    if (record !== undefined) {
      this.byAgent.delete(agentId);
      this.byAgent.set(agentId, record);
    }
    return record;
  }

  remember(agentId: string, record: RememberedBootLog): void {
    this.byAgent.delete(agentId);
    this.byAgent.set(agentId, record);
    if (this.byAgent.size > this.capacity) {
      const oldest = this.byAgent.keys().next();
      if (oldest.done !== true) {
        this.byAgent.delete(oldest.value);
      }
    }
  }

  forget(agentId: string): void {
    this.byAgent.delete(agentId);
  }

  get size(): number {
    return this.byAgent.size;
  }
}

/** True when `record` was verified under exactly `context` (identities for the AK and refstate). */
export function sameBootLogContext(record: BootLogContext, context: BootLogContext): boolean {
  return (
    record.ak === context.ak &&
    record.hashAlg === context.hashAlg &&
    record.mask === context.mask &&
    record.refstate === context.refstate &&
    record.measuredBootEvaluate === context.measuredBootEvaluate &&
    record.policyName === context.policyName
  );
}
