import { BoundedCache } from '../cache/bounded-cache.js';
import type { MbRefstate } from '../mb/mb-refstate.js';
import type { AgentPolicies, MeasuredBootEvaluate } from './agent-policies.js';
import type { MeasuredBootPolicyName } from './internal/mb-check.js';

/** Agents remembered by default: a verifier process polls a few thousand. */
const DEFAULT_CAPACITY = 16_384;
/**
 * Characters of remembered logs kept at most, counted per record (a log shared by several agents
 * counts once for each): 256 MiB, about 5,000 agents with the fleet's 51 KB log. Past it the least
 * recently used go first, and those agents send their log again: a cost, never a verdict.
 */
const DEFAULT_BUDGET = 256 * 1024 * 1024;
/** A longer log is not remembered (sent and checked every round): one agent cannot pin a large share of the budget. */
export const MAX_REMEMBERED_LOG = 256 * 1024;
/**
 * Seconds after which a remembered log is asked for again (a full round with PCR 0 in the mask): a
 * runtime extend of PCR 0, which a round without it cannot see, is then found within this bound.
 */
export const BOOT_LOG_RECHECK_SECONDS = 60;

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
  /** Unix seconds of the round that verified it (`BOOT_LOG_RECHECK_SECONDS` later it is asked for again). */
  readonly verifiedAt: number;
}

/**
 * Push (`push-boot-log.ts`): a boot log that passed in an attestation, with the `system_info.boot_time`
 * (Unix seconds) it was sent with — the agent's word for its boot, which phase 1 compares; the quote of
 * every later attestation covers all boot PCRs, so nothing of the TPM is kept.
 */
export interface HeldPushBootLog {
  readonly kind: 'push';
  /**
   * The enrolment it was verified for (`verifier_agents.enrolment`, decimal text): the memo is per
   * agent id, and an agent deleted and enrolled again, even on the same boot, must send its log again.
   */
  readonly enrolment: string;
  readonly context: BootLogContext;
  /** The verified `uefi_log` entries (base64), shared (not copied). */
  readonly eventLog: string;
  readonly bootTime: number;
}

type MemoRecord = RememberedBootLog | HeldPushBootLog;

function isPush(record: MemoRecord): record is HeldPushBootLog {
  return 'kind' in record;
}

/**
 * The boot logs this verifier process verified, one per agent (least recently used go first) — an
 * explicit object the verifier service owns and hands to the engine (`PullSettings.bootLogs`); the
 * engine keeps no hidden state. A process that restarts starts empty: every pull agent's first round
 * here carries its log again (push agents' logs are also stored in the database: `PushBootLogStore`).
 * Pull and push records share its bounds.
 */
export class BootLogMemo {
  private readonly byAgent: BoundedCache<string, MemoRecord>;

  constructor(capacity = DEFAULT_CAPACITY, budget = DEFAULT_BUDGET) {
    this.byAgent = new BoundedCache(capacity, { weigh: (record) => record.eventLog.length, budget });
  }

  /** The pull record of `agentId`, if any. */
  recall(agentId: string): RememberedBootLog | undefined {
    const record = this.byAgent.get(agentId);
    return record === undefined || isPush(record) ? undefined : record;
  }

  /** The push record of `agentId`, if any. */
  recallPush(agentId: string): HeldPushBootLog | undefined {
    const record = this.byAgent.get(agentId);
    return record !== undefined && isPush(record) ? record : undefined;
  }

  /** Keeps `record` (a log longer than `MAX_REMEMBERED_LOG` is not kept), dropping the least recently used past the capacity or the budget. */
  remember(agentId: string, record: MemoRecord): void {
    this.byAgent.delete(agentId);
    if (record.eventLog.length <= MAX_REMEMBERED_LOG) {
      this.byAgent.set(agentId, record);
    }
  }

  forget(agentId: string): void {
    this.byAgent.delete(agentId);
  }

  /** Characters of the logs kept, counted per record. */
  get retainedCharacters(): number {
    return this.byAgent.weighedTotal;
  }
}

/** True when `record` was verified under exactly `context` in bank `hashAlg` (identities for the AK and refstate). */
export function sameBootLogContext(record: BootLogContext, context: Omit<BootLogContext, 'hashAlg'>, hashAlg: string): boolean {
  return (
    record.ak === context.ak &&
    record.hashAlg === hashAlg &&
    record.mask === context.mask &&
    record.refstate === context.refstate &&
    record.measuredBootEvaluate === context.measuredBootEvaluate &&
    record.policyName === context.policyName
  );
}
