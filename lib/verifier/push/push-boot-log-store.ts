import type { Knex } from 'knex';
import type { StoredPushBootLog } from '../../attestation/push-boot-log.js';
import { fixedStatement, type Statements } from '../../db/fixed-statement.js';

const BOOT_LOGS = 'verifier_push_boot_logs';

/** What `PushBootLogStore.write` did. */
export type PushBootLogWrite = 'written' | 'present' | 'refused';

/**
 * Stores `log` for `agentId` after its attestation `index` passed with it — unless a record for the
 * same boot and context is stored already (the log is written once per boot, not per attestation),
 * the attestation did not pass, or the row was written for a newer attestation: a newer log, or the
 * tombstone of a failure at or after `index` (its verdict must not see the log come back, even when
 * the failure commits while this runs: the upsert then waits for it and finds the tombstone). A
 * failure stored before tombstones existed deleted the row: `not exists` keeps it so. Returns the
 * agent id when a row was written.
 */
const WRITE = `
insert into ${BOOT_LOGS} (agent_id, attestation_index, boot_time, hash_alg, mask, context_sha256, event_log)
select :agentId, :index, :bootTime, :hashAlg, :mask, :contextSha256, :eventLog
where exists (select 1 from verifier_push_attestations a where a.agent_id = :agentId and a.index = :index and a.evaluation = 'pass')
  and not exists (select 1 from verifier_push_attestations a where a.agent_id = :agentId and a.index > :index and a.evaluation = 'fail')
on conflict (agent_id) do update set
  attestation_index = excluded.attestation_index, boot_time = excluded.boot_time, hash_alg = excluded.hash_alg, mask = excluded.mask,
  context_sha256 = excluded.context_sha256, event_log = excluded.event_log, verified_at = now()
where ${BOOT_LOGS}.attestation_index < excluded.attestation_index
  and (${BOOT_LOGS}.event_log is null
    or (${BOOT_LOGS}.boot_time, ${BOOT_LOGS}.hash_alg, ${BOOT_LOGS}.mask, ${BOOT_LOGS}.context_sha256)
      is distinct from (excluded.boot_time, excluded.hash_alg, excluded.mask, excluded.context_sha256))
returning agent_id`;

/**
 * The push agents' verified boot logs in the database (migrations 20261205003000, 20261205030000), so
 * that any verifier process can judge evidence asked without the log (`HeldBootLogs`). One row per
 * agent: its current boot's log, or a failure's tombstone (no log), with the attestation it was
 * written for. Its log's boot time is read with the agent's row (`PushRepository.agentWithLatest`);
 * the log only where this process's memo misses; written once per boot.
 */
export class PushBootLogStore {
  constructor(private readonly knex: Knex) {}

  /** The agent's stored log; undefined when there is none or a failure left its tombstone. */
  async read(agentId: string): Promise<StoredPushBootLog | undefined> {
    const row = (await this.knex(BOOT_LOGS).where({ agent_id: agentId }).whereNotNull('event_log').first()) as Record<string, unknown> | undefined;
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
   * `WRITE`: `written`; `present` when the same boot and context was stored already, for this
   * attestation or an older one; `refused` when the attestation did not pass, or a newer one's log or
   * a failure's tombstone is stored (the caller must then not hold the log either).
   */
  async write(agentId: string, index: number, log: StoredPushBootLog): Promise<PushBootLogWrite> {
    const result = (await this.knex.raw(WRITE, { agentId, index, ...log })) as { rows: unknown[] };
    if (result.rows.length > 0) return 'written';
    const same = await this.knex(BOOT_LOGS)
      .where({ agent_id: agentId, boot_time: log.bootTime, hash_alg: log.hashAlg, mask: log.mask, context_sha256: log.contextSha256 })
      .where('attestation_index', '<=', index)
      .first('agent_id');
    return same === undefined ? 'refused' : 'present';
  }
}

/**
 * The tombstone of each agent's failure: no log, at the agent's latest attestation (the failing one,
 * or the one a silence outlived), never lower than the row's. It replaces any log, so a pass written
 * before the failure is gone with it, and a write for an attestation up to that index finds it
 * (`WRITE`). A tombstone already at that index is left as it is: repeated failures of an agent that
 * does not attest write no new row version (the conflicting row is still locked, so a racing write
 * waits all the same).
 */
const FORGET = fixedStatement(
  'verifier_forget_push_boot_logs',
  `
insert into ${BOOT_LOGS} (agent_id, attestation_index)
select f.agent_id, coalesce((select max(a.index) from verifier_push_attestations a where a.agent_id = f.agent_id), -1)
from (select distinct e.agent_id from jsonb_array_elements_text(?::jsonb) as e(agent_id)) f
on conflict (agent_id) do update set
  attestation_index = greatest(${BOOT_LOGS}.attestation_index, excluded.attestation_index),
  boot_time = null, hash_alg = null, mask = null, context_sha256 = null, event_log = null, verified_at = now()
where ${BOOT_LOGS}.event_log is not null or ${BOOT_LOGS}.attestation_index < excluded.attestation_index`,
);

/**
 * Tombstones the stored logs of `agentIds`, in the transaction of their failing verdicts
 * (`PushVerdictWriter`), through its `statements`: every process then asks them for the log again.
 */
export async function forgetPushBootLogs(statements: Statements, agentIds: readonly string[]): Promise<void> {
  if (agentIds.length > 0) await statements(FORGET, [JSON.stringify(agentIds)]);
}
