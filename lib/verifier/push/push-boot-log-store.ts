import type { Knex } from 'knex';
import type { StoredPushBootLog } from '../../attestation/push-boot-log.js';
import type { VerifierAgentRecord } from '../verifier-agent-record.js';

const BOOT_LOGS = 'verifier_push_boot_logs';

/** What `PushBootLogStore.write` did. */
export type PushBootLogWrite = 'written' | 'present' | 'refused';

/** The agent's enrolment a row is read or written for (`VerifierAgentRecord.enrolment`: a re-enrolment's is higher). */
export type EnrolledAgent = Pick<VerifierAgentRecord, 'agentId' | 'enrolment'>;

/**
 * Stores `log` for `agentId`'s enrolment `enrolment` after its attestation `index` passed with it —
 * unless the agent's row is of another enrolment (deleted, enrolled again), a record for the same boot
 * and context is stored already (the log is written once per boot, not per attestation), the
 * attestation did not pass, or the row is newer: a newer enrolment's, or this enrolment's written for
 * a newer attestation — a newer log, or the tombstone of a failure at or after `index` (its verdict
 * must not see the log come back, even when the failure commits while this runs: the upsert then
 * waits for it and finds the tombstone). A row of an older enrolment is replaced whatever its index:
 * one that landed after its agent was deleted and enrolled again (the delete and the enrolment both
 * committed between this statement's snapshot and its insert) must not hold back the new enrolment's
 * writes. A failure stored before tombstones existed deleted the row: `not exists` keeps it so.
 * Returns the agent id when a row was written.
 */
const WRITE = `
insert into ${BOOT_LOGS} (agent_id, enrolment, attestation_index, boot_time, hash_alg, mask, context_sha256, event_log)
select :agentId, :enrolment::bigint, :index, :bootTime, :hashAlg, :mask, :contextSha256, :eventLog
where exists (select 1 from verifier_agents g where g.agent_id = :agentId and g.enrolment = :enrolment::bigint)
  and exists (select 1 from verifier_push_attestations a where a.agent_id = :agentId and a.index = :index and a.evaluation = 'pass')
  and not exists (select 1 from verifier_push_attestations a where a.agent_id = :agentId and a.index > :index and a.evaluation = 'fail')
on conflict (agent_id) do update set
  enrolment = excluded.enrolment, attestation_index = excluded.attestation_index, boot_time = excluded.boot_time, hash_alg = excluded.hash_alg,
  mask = excluded.mask, context_sha256 = excluded.context_sha256, event_log = excluded.event_log, verified_at = now()
where ${BOOT_LOGS}.enrolment < excluded.enrolment
  or (${BOOT_LOGS}.enrolment = excluded.enrolment and ${BOOT_LOGS}.attestation_index < excluded.attestation_index
    and (${BOOT_LOGS}.event_log is null
      or (${BOOT_LOGS}.boot_time, ${BOOT_LOGS}.hash_alg, ${BOOT_LOGS}.mask, ${BOOT_LOGS}.context_sha256)
        is distinct from (excluded.boot_time, excluded.hash_alg, excluded.mask, excluded.context_sha256)))
returning agent_id`;

/**
 * The push agents' verified boot logs in the database (migrations 20261205003000, 20261205030000,
 * 20261205060000), so that any verifier process can judge evidence asked without the log
 * (`HeldBootLogs`). One row per agent: its current boot's log, or a failure's tombstone (no log), with
 * the enrolment and attestation it was written for; a row of another enrolment is read as none. Its
 * log's boot time is read with the agent's row (`PushRepository.agentWithLatest`); the log only where
 * this process's memo misses; written once per boot.
 */
export class PushBootLogStore {
  constructor(private readonly knex: Knex) {}

  /** The log stored for the agent's enrolment; undefined when there is none, a failure left its tombstone, or the row is another enrolment's. */
  async read({ agentId, enrolment }: EnrolledAgent): Promise<StoredPushBootLog | undefined> {
    const row = (await this.knex(BOOT_LOGS).where({ agent_id: agentId, enrolment }).whereNotNull('event_log').first()) as Record<string, unknown> | undefined;
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
   * enrolment's attestation or an older one; `refused` when the attestation did not pass, the agent
   * is no longer of this enrolment, or a newer enrolment's row, a newer attestation's log or a
   * failure's tombstone is stored (the caller must then not hold the log either).
   */
  async write({ agentId, enrolment }: EnrolledAgent, index: number, log: StoredPushBootLog): Promise<PushBootLogWrite> {
    const result = (await this.knex.raw(WRITE, { agentId, enrolment, index, ...log })) as { rows: unknown[] };
    if (result.rows.length > 0) return 'written';
    const same = await this.knex(BOOT_LOGS)
      .where({ agent_id: agentId, enrolment, boot_time: log.bootTime, hash_alg: log.hashAlg, mask: log.mask, context_sha256: log.contextSha256 })
      .where('attestation_index', '<=', index)
      .first('agent_id');
    return same === undefined ? 'refused' : 'present';
  }
}

/**
 * The tombstone of each agent's failure: no log, for the agent's enrolment (its row, which the
 * failure's verdict has just written and still locks), at its latest attestation (the failing one, or
 * the one a silence outlived) — never lower than the row's when the row is of that enrolment; a row of
 * another enrolment is replaced outright. It replaces any log, so a pass written before the failure is
 * gone with it, and a write for an attestation up to that index finds it (`WRITE`). A tombstone
 * already at that enrolment and index is left as it is: repeated failures of an agent that does not
 * attest write no new row version (the conflicting row is still locked, so a racing write waits all
 * the same).
 *
 * Another enrolment's row is replaced with `<>`, where `WRITE` replaces only an older one (`<`): here
 * the enrolment is the agent's row's, locked by this transaction, so no newer one exists (a newer
 * enrolment needs that row deleted first) and the two are the same; should one ever exist, a tombstone
 * over it is the fail-closed choice — at worst its agent is asked for the log once more — while a
 * write over it would make an older enrolment's log the row's.
 */
export const FORGET_PUSH_BOOT_LOGS_SQL = `insert into ${BOOT_LOGS} (agent_id, enrolment, attestation_index)
select g.agent_id, g.enrolment, coalesce((select max(a.index) from verifier_push_attestations a where a.agent_id = g.agent_id), -1)
from verifier_agents g where g.agent_id in (select e.agent_id from jsonb_array_elements_text(?::jsonb) as e(agent_id))
on conflict (agent_id) do update set
  enrolment = excluded.enrolment,
  attestation_index = case when ${BOOT_LOGS}.enrolment = excluded.enrolment
    then greatest(${BOOT_LOGS}.attestation_index, excluded.attestation_index) else excluded.attestation_index end,
  boot_time = null, hash_alg = null, mask = null, context_sha256 = null, event_log = null, verified_at = now()
where ${BOOT_LOGS}.enrolment <> excluded.enrolment or ${BOOT_LOGS}.event_log is not null or ${BOOT_LOGS}.attestation_index < excluded.attestation_index`;

