import type { Logger } from 'pino';
import type { AgentPolicies } from '../../attestation/agent-policies.js';
import type { BootLogMemo } from '../../attestation/boot-log-memo.js';
import { heldBootLog, heldFromStore, pushBootLogToHold, storedPushBootLog, type HoldingAgent, type PushBootLogs } from '../../attestation/push-boot-log.js';
import type { PushChoice, PushEvidence, PushVerdict } from '../../attestation/push-decision.js';
import type { VerifierAgentRecord } from '../verifier-agent-record.js';
import type { PushBootLogStore } from './push-boot-log-store.js';
import { PushRefused } from './push-reply.js';
import type { PushAttestation } from './push-repository.js';

/**
 * The push routes' side of the verified boot logs (`lib/attestation/push-boot-log.ts` decides): what
 * phase 1 consults, the held log put into phase 2's evidence, the memo and the database kept in step
 * with stored verdicts. The memo is the cache in front of the database (`PushBootLogStore`): a log
 * verified at one process is found by any other, read once and then held. Without a memo, every
 * attestation asks for the `uefi_log`.
 */
export class HeldBootLogs {
  constructor(
    private readonly memo: BootLogMemo | undefined,
    private readonly policyName: PushBootLogs['policyName'],
    private readonly store: PushBootLogStore,
    private readonly log: Logger,
  ) {}

  /**
   * What `choosePushEvidence` consults for `agentId`; nothing (the log is asked for) when the agent's
   * `latest` attestation failed — at whatever process: the record this one holds is dropped — or was
   * asked without the log and never judged (its evidence went to a process that could not find the
   * log, or never came), so an agent is not held in a loop of refusals.
   */
  of({ agentId, enrolment }: Pick<VerifierAgentRecord, 'agentId' | 'enrolment'>, latest?: PushAttestation): PushBootLogs | undefined {
    if (this.memo === undefined) return undefined;
    if (latest?.evaluation === 'fail') {
      this.memo.forget(agentId);
      return undefined;
    }
    const abandoned = latest !== undefined && latest.stage === 'awaiting_evidence' && latest.choice.uefiLogHeld === true;
    return abandoned ? undefined : { memo: this.memo, agentId, enrolment, policyName: this.policyName };
  }

  /**
   * Before phase 1 chooses from a read row (`of` then consults the memo), with the boot time of the
   * agent's stored log read with that row (`storedLogBootTime`; none: no log, or a failure's
   * tombstone): the memo keeps its log for the boot time offered only while the database stores a log
   * of that boot, whatever the agent's latest attestation — a failure since (a silence, which leaves
   * the latest attestation passed or unjudged; failing evidence at another process) tombstoned it, and
   * the log is asked for. When the latest attestation passed with a log, sent or held (so one was
   * verified for some boot, at whatever process), the memo holds none and a log of that boot is
   * stored, it is read and held when verified under the agent's current AK, refstate and switches.
   * Until held, each phase 1 here reads once (a process that only chooses, its evidence judged
   * elsewhere, finds the log the first time another process stored it). A failed read is only a miss
   * (the log is asked for).
   */
  async recallStored(record: VerifierAgentRecord, policies: AgentPolicies, latest: PushAttestation | undefined, bootTime: number | null, storedLogBootTime: number | undefined): Promise<void> {
    const { agentId } = record;
    if (this.memo === undefined || bootTime === null) return;
    // Before anything about the latest attestation: a failure may have tombstoned the log while that
    // attestation was never judged (a silence after evidence left unanswered or mid-judgement).
    if (storedLogBootTime !== bootTime) {
      this.memo.forget(agentId);
      return;
    }
    if (policies.mbRefstate === null || latest?.evaluation !== 'pass') return;
    // Only after a pass that involved a log (sent or held), so an agent that never sends one costs no read.
    if (!latest.choice.uefiLog && latest.choice.uefiLogHeld !== true) return;
    const held = this.memo.recallPush(agentId);
    if (held?.bootTime === bootTime && held.enrolment === record.enrolment) return;
    const stored = await this.store.read(record).catch((err: unknown) => {
      this.log.warn({ err, agentId }, 'stored boot log not read: the uefi_log is asked for');
      return undefined;
    });
    const found = stored === undefined || stored.bootTime !== bootTime ? undefined : heldFromStore(stored, this.policyName, policies, record);
    if (found !== undefined) this.memo.remember(agentId, found);
  }

  /** `evidence` with the memo's log when phase 1 left the `uefi_log` out; undefined when the memo misses (`withStoredLog` then). */
  withHeldLog(agent: HoldingAgent, choice: PushChoice, evidence: PushEvidence): PushEvidence | undefined {
    if (choice.uefiLogHeld !== true || evidence.uefiLog !== undefined) {
      return evidence;
    }
    const log = this.memo === undefined ? undefined : heldBootLog(this.memo, agent, choice);
    return log === undefined ? undefined : { ...evidence, uefiLog: log };
  }

  /**
   * `withHeldLog`, reading the database's log when the memo misses (another process chose; this one
   * restarted or forgot it) and holding it: it must be the log of the boot time, bank and selection
   * phase 1 chose, verified under the agent's current AK, refstate and switches. When none is (nothing
   * stored, or another boot's) or the read fails, the evidence is not judged: 503 with `Retry-After`,
   * before anything is taken, so the agent starts a new attestation (the Rust push agent goes from any
   * refused PATCH back to phase 1; ours too), whose phase 1 asks for the log.
   */
  async withStoredLog(record: VerifierAgentRecord, policies: () => Promise<AgentPolicies>, choice: PushChoice, evidence: PushEvidence): Promise<PushEvidence> {
    const { agentId } = record;
    const held = this.withHeldLog(record, choice, evidence);
    if (held !== undefined) return held;
    if (this.memo !== undefined) {
      // The policies are read outside the store's `try`: an error there is the verifier's own, with its own handling.
      const current = await policies();
      try {
        const stored = await this.store.read(record);
        const found = stored === undefined ? undefined : heldFromStore(stored, this.policyName, current, record);
        if (found !== undefined) {
          this.memo.remember(agentId, found);
          const withLog = this.withHeldLog(record, choice, evidence);
          if (withLog !== undefined) return withLog;
        }
      } catch (err) {
        this.log.warn({ err, agentId }, 'stored boot log not read: evidence asked without the log is not judged');
      }
    }
    throw new PushRefused(503, 'boot_log_not_held', 'this verifier cannot find the boot log this attestation was asked without: start a new attestation', 1);
  }

  /**
   * After a stored verdict on `evidence`: a fail drops the memo's record (its transaction tombstoned
   * the stored one); a pass that carried the log asked for is held and stored (once per boot: the store
   * skips a record it has; the policies are read only then). A lost write only means that another
   * process asks for the log again.
   */
  async settle(record: VerifierAgentRecord, index: number, policies: () => Promise<AgentPolicies>, choice: PushChoice, evidence: PushEvidence, verdict: PushVerdict): Promise<void> {
    const { agentId, akTpm } = record;
    if (this.memo === undefined) return;
    if (verdict.verdict === 'fail') {
      this.memo.forget(agentId);
      return;
    }
    if (!choice.uefiLog) return;
    const held = pushBootLogToHold(this.policyName, await policies(), record, choice, evidence);
    if (held === undefined) return;
    this.memo.remember(agentId, held);
    // A log this process holds but could not store would send every other process's evidence to 503
    // for the rest of the boot: forgotten, the next phase 1 here asks for the log and stores it again.
    const stored = await this.store.write(record, index, storedPushBootLog(held, akTpm)).catch((err: unknown) => {
      this.memo?.forget(agentId);
      throw err;
    });
    if (stored === 'refused') this.memo.forget(agentId);
  }
}
