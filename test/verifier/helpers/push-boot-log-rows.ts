import type { Knex } from 'knex';
import type { StoredPushBootLog } from '../../../lib/attestation/push-boot-log.js';
import { fixedStatement, type Statements } from '../../../lib/db/fixed-statement.js';
import { FORGET_PUSH_BOOT_LOGS_SQL } from '../../../lib/verifier/push/push-boot-log-store.js';

/** The agent the boot-log tests use: the first of `seedVerifierAgents` (bench/dashboard-bench.ts). */
export const BOOT_LOG_AGENT = 'agent-000001';
/** A stored log (its fields are opaque to the store: any text, a 64-hex context digest). */
export const LOG: StoredPushBootLog = { bootTime: 1_700_000_000, hashAlg: 'sha256', mask: '0xffff', contextSha256: 'a'.repeat(64), eventLog: 'TE9H' };
/** `LOG`'s agent after a reboot: another boot time and log, the same context. */
export const REBOOTED: StoredPushBootLog = { ...LOG, bootTime: LOG.bootTime + 60, eventLog: 'TkVX' };

/** The agent's push attestation `index`, judged `evaluation` (null: still awaiting its evidence). */
export async function judged(knex: Knex, index: number, evaluation: 'pass' | 'fail' | null = 'pass', agentId = BOOT_LOG_AGENT): Promise<void> {
  await knex('verifier_push_attestations').insert({
    agent_id: agentId, index, stage: evaluation === null ? 'awaiting_evidence' : 'verification_complete', evaluation, challenge: `c${index}`, choice: '{}', system_info: '{}',
    capabilities_received_at: new Date(), challenges_expire_at: new Date(),
  });
}

/** The agent's `verifier_push_boot_logs` row: the enrolment and attestation it was written for, and its log (null: a tombstone). */
export async function bootLogRow(knex: Knex, agentId = BOOT_LOG_AGENT): Promise<{ enrolment: string; attestation_index: number; event_log: string | null } | undefined> {
  return (await knex('verifier_push_boot_logs').where({ agent_id: agentId }).first(knex.raw('enrolment::text as enrolment'), 'attestation_index', 'event_log')) as
    | { enrolment: string; attestation_index: number; event_log: string | null }
    | undefined;
}

const FORGET = fixedStatement('test_forget_push_boot_logs', `\n${FORGET_PUSH_BOOT_LOGS_SQL}`);

/**
 * Runs the tombstones the push verdicts' transaction writes for failing agents (`FORGET_PUSH_BOOT_LOGS_SQL`,
 * part of its second statement) on their own, through `statements`.
 */
export async function forgetPushBootLogs(statements: Statements, agentIds: readonly string[]): Promise<void> {
  if (agentIds.length > 0) await statements(FORGET, [JSON.stringify(agentIds)]);
}
