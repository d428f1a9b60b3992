import type { Knex } from 'knex';
import type { StoredPushBootLog } from '../../attestation/push-boot-log.js';
import { fixedStatement, type Statements } from '../../db/fixed-statement.js';

const BOOT_LOGS = 'verifier_push_boot_logs';

/** What `PushBootLogStore.write` did. */
export type PushBootLogWrite = 'written' | 'present' | 'refused';

/**
 * Stores `log` for `agentId` after its attestation `index` passed with it — unless a record for the
 * same boot and context is stored already (the log is written once per boot, not per attestation),
 * the attestation did not pass, or a later one of the agent's failed (its verdict deleted the record
 * and must not see it come back). Returns the agent id when a row was written.
 */
const WRITE = `
insert into ${BOOT_LOGS} (agent_id, boot_time, hash_alg, mask, context_sha256, event_log)
select :agentId, :bootTime, :hashAlg, :mask, :contextSha256, :eventLog
where exists (select 1 from verifier_push_attestations a where a.agent_id = :agentId and a.index = :index and a.evaluation = 'pass')
  and not exists (select 1 from verifier_push_attestations a where a.agent_id = :agentId and a.index > :index and a.evaluation = 'fail')
on conflict (agent_id) do update set
  boot_time = excluded.boot_time, hash_alg = excluded.hash_alg, mask = excluded.mask,
  context_sha256 = excluded.context_sha256, event_log = excluded.event_log, verified_at = now()
where (${BOOT_LOGS}.boot_time, ${BOOT_LOGS}.hash_alg, ${BOOT_LOGS}.mask, ${BOOT_LOGS}.context_sha256)
  is distinct from (excluded.boot_time, excluded.hash_alg, excluded.mask, excluded.context_sha256)
returning agent_id`;

/**
 * The push agents' verified boot logs in the database (migration 20261205003000), so that any verifier
 * process can judge evidence asked without the log (`HeldBootLogs`). One row per agent: its current
 * boot's log. Read only where this process's memo misses; written once per boot.
 */
export class PushBootLogStore {
  constructor(private readonly knex: Knex) {}

  async read(agentId: string): Promise<StoredPushBootLog | undefined> {
    const row = (await this.knex(BOOT_LOGS).where({ agent_id: agentId }).first()) as Record<string, unknown> | undefined;
    if (row === undefined) return undefined;
    return {
      bootTime: Number(row['boot_time']),
      hashAlg: String(row['hash_alg']),
      mask: String(row['mask']),
      contextSha256: String(row['context_sha256']),
      eventLog: String(row['event_log']),
    };
  }

  /**
   * `WRITE`: `written`; `present` when the same boot and context was stored already; `refused` when the
   * attestation did not pass or a later one failed (the caller must then not hold the log either).
   */
  async write(agentId: string, index: number, log: StoredPushBootLog): Promise<PushBootLogWrite> {
    const result = (await this.knex.raw(WRITE, { agentId, index, ...log })) as { rows: unknown[] };
    if (result.rows.length > 0) return 'written';
    const same = await this.knex(BOOT_LOGS)
      .where({ agent_id: agentId, boot_time: log.bootTime, hash_alg: log.hashAlg, mask: log.mask, context_sha256: log.contextSha256 })
      .first('agent_id');
    return same === undefined ? 'refused' : 'present';
  }
}

const FORGET = fixedStatement('verifier_forget_push_boot_logs', `delete from ${BOOT_LOGS} where agent_id in (select jsonb_array_elements_text(?::jsonb))`);

/** Deletes the stored logs of `agentIds`, in the transaction of their failing verdicts (`PushVerdictWriter`), through its `statements`. */
export async function forgetPushBootLogs(statements: Statements, agentIds: readonly string[]): Promise<void> {
  if (agentIds.length > 0) await statements(FORGET, [JSON.stringify(agentIds)]);
}
