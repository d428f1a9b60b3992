import type { AgentPolicies } from '../../attestation/agent-policies.js';
import type { BootLogMemo } from '../../attestation/boot-log-memo.js';
import { heldBootLog, rememberPushBootLog, type PushBootLogs } from '../../attestation/push-boot-log.js';
import type { PushChoice, PushEvidence, PushVerdict } from '../../attestation/push-decision.js';
import { PushRefused } from './push-reply.js';
import type { PushAttestation } from './push-repository.js';

/**
 * The push routes' side of the boot logs this process verified (`lib/attestation/push-boot-log.ts`
 * decides): what phase 1 consults, the remembered log put into phase 2's evidence, the memo kept in
 * step with stored verdicts. Without a memo, every attestation asks for the `uefi_log`.
 */
export class HeldBootLogs {
  constructor(
    private readonly memo: BootLogMemo | undefined,
    private readonly policyName: PushBootLogs['policyName'],
  ) {}

  /**
   * What `choosePushEvidence` consults for `agentId`; nothing when the agent's `latest` attestation was
   * asked without the log and never judged (its evidence went to a process that held no log, or never
   * came): the next one asks for the log, so an agent whose phases reach two processes is not held in
   * that loop.
   */
  of(agentId: string, latest?: PushAttestation): PushBootLogs | undefined {
    const abandoned = latest !== undefined && latest.stage === 'awaiting_evidence' && latest.choice.uefiLogHeld === true;
    return this.memo === undefined || abandoned ? undefined : { memo: this.memo, agentId, policyName: this.policyName };
  }

  /**
   * `evidence` with the remembered log when phase 1 left the `uefi_log` out. When this process holds
   * no log for it (another process chose; this one restarted or forgot it), the evidence is not judged:
   * 503 with `Retry-After`, before anything is taken, so the agent starts a new attestation (the Rust
   * push agent goes from any refused PATCH back to phase 1; ours too), whose phase 1 asks for the log.
   */
  withHeldLog(agentId: string, akTpm: string, choice: PushChoice, evidence: PushEvidence): PushEvidence {
    if (choice.uefiLogHeld !== true || evidence.uefiLog !== undefined) {
      return evidence;
    }
    const log = this.memo === undefined ? undefined : heldBootLog(this.memo, agentId, akTpm, choice);
    if (log === undefined) {
      throw new PushRefused(503, 'boot_log_not_held', 'this verifier process does not hold the boot log this attestation was asked without: start a new attestation', 1);
    }
    return { ...evidence, uefiLog: log };
  }

  /** After a stored verdict on `evidence`: a fail drops the record, a pass that carried the log asked for is remembered (`rememberPushBootLog`; the policies are read only then). */
  async settle(agentId: string, policies: () => Promise<AgentPolicies>, akTpm: string, choice: PushChoice, evidence: PushEvidence, verdict: PushVerdict): Promise<void> {
    const logs = this.of(agentId);
    if (logs === undefined) return;
    if (verdict.verdict === 'fail') {
      logs.memo.forget(agentId);
    } else if (choice.uefiLog) {
      rememberPushBootLog(logs, await policies(), akTpm, choice, evidence, verdict);
    }
  }
}
