import { agentVersionSql, stoppedFromSql } from '../agent-row-version.js';

// The push model's statements over its attestations (migration 20261203100000) and the agents' rows;
// `PushRepository` runs them.
export const ATTESTATIONS = 'verifier_push_attestations';
export const AGENTS = 'verifier_agents';
/** Columns of `AGENT_WITH_VERSION` and `AGENT_WITH_LATEST`: the row's version, the latest attestation as JSON (timestamps as ISO text with offset), the stored boot log's boot time. */
export const VERSION = 'push_agent_version';
export const LATEST = 'push_latest_attestation';
export const STORED_LOG_BOOT = 'push_stored_log_boot_time';
const AGENT_AND_VERSION = `a.*, ${agentVersionSql('a')} as ${VERSION}`;
export const AGENT_WITH_VERSION = `select ${AGENT_AND_VERSION} from verifier_agents a where a.agent_id = ?`;
export const AGENT_WITH_LATEST = `
select ${AGENT_AND_VERSION}, (
  select to_jsonb(t) from verifier_push_attestations t where t.agent_id = a.agent_id order by t.index desc limit 1
) as ${LATEST}, (select b.boot_time from verifier_push_boot_logs b where b.agent_id = a.agent_id and b.enrolment = a.enrolment and b.event_log is not null) as ${STORED_LOG_BOOT}
from verifier_agents a where a.agent_id = ?`;

/** The columns phase 1 fills, read from a JSON array of `newAttestationRow`s (one parameter). */
const NEW_COLUMNS = 'agent_id, index, stage, challenge, choice, system_info, capabilities_received_at, challenges_expire_at';
const NEW_ROWS = `jsonb_to_recordset(?::jsonb) as i(
  agent_id text, index int, stage text, challenge text, choice jsonb, system_info jsonb,
  capabilities_received_at timestamptz, challenges_expire_at timestamptz, after_index int, after_challenge text, agent_version text)`;

/**
 * Attestations kept per agent: inserting attestation `n` deletes the one at `n - KEPT_ATTESTATIONS`
 * (the one falling out: indexes are consecutive), in the same statement, by equality on the primary
 * key so that the planner uses the index whatever the table's size (a range `<=` was planned as a Seq
 * Scan of the whole table on small and medium tables). Phase 1 inserts a row per POST and nothing else
 * ever removed one but the agent's deletion; the migration 20261205130000-verifier-push-attestations-prune
 * removed, once, the rows already past the newest KEPT_ATTESTATIONS.
 */
export const KEPT_ATTESTATIONS = 100;

/** Deletes, for each attestation `inserted` (a CTE naming `agent_id` and `index`), its agent's attestation falling past KEPT_ATTESTATIONS. */
const PRUNE_PAST_KEPT = `
delete from verifier_push_attestations old using inserted i
where old.agent_id = i.agent_id and old.index = i.index - ${KEPT_ATTESTATIONS}`;

/** Inserts an attestation, pruning its agent's oldest; a concurrent insert of the same index makes it insert nothing. Answers the challenge inserted. */
export const INSERT = `
with inserted as (
  insert into verifier_push_attestations (${NEW_COLUMNS}) select ${NEW_COLUMNS} from ${NEW_ROWS} on conflict do nothing
  returning agent_id, index, challenge
), pruned as (${PRUNE_PAST_KEPT})
select challenge from inserted`;

/**
 * Inserts each attestation only while the agent's latest is the judged one named (`after_index`,
 * `after_challenge`) and the agent's row still has the version its verdict left (`agentVersionSql`),
 * pruning its agent's oldest. A concurrent insert of the same index makes it insert nothing. Answers
 * the challenges inserted.
 */
export const INSERT_AFTER = `
with inserted as (
  insert into verifier_push_attestations (${NEW_COLUMNS})
  select ${NEW_COLUMNS} from ${NEW_ROWS}
  where (
    select t.index = i.after_index and t.challenge = i.after_challenge and t.stage = 'verification_complete'
    from verifier_push_attestations t where t.agent_id = i.agent_id order by t.index desc limit 1
  ) and (select ${agentVersionSql('a')} from verifier_agents a where a.agent_id = i.agent_id) = i.agent_version
  on conflict do nothing
  returning agent_id, index, challenge
), pruned as (${PRUNE_PAST_KEPT})
select challenge from inserted`;

/**
 * Takes the evidence of each attestation named (`awaiting_evidence` → `evaluating_evidence`, once):
 * only while it is the agent's latest, its challenge had not expired when the evidence came, and the
 * agent's row still has the version the evidence was judged from — or, for evidence judged failing
 * the agent (`record_over_stop`), an operator stopped the agent from that very version since
 * (`stopped_from_version`): its failure is still recorded, and the token consumed, by `SAVE_ROUNDS` in
 * the same transaction. Answers the agents taken.
 */
export const TAKE_JUDGED_EVIDENCE = `
${takeJudgedEvidenceSql('jsonb_to_recordset(?::jsonb) as i(agent_id text, index int, challenge text, received_at timestamptz, agent_version text, record_over_stop boolean)')}`;

/**
 * `TAKE_JUDGED_EVIDENCE` of the takes `takes` names (a `from` item `i` with its columns: `agent_id`,
 * `index`, `challenge`, `received_at`, `agent_version`, `record_over_stop`); the push verdicts' statement
 * takes its evidence in a CTE of it (`PUSH_SAVE_ROUNDS`).
 */
export function takeJudgedEvidenceSql(takes: string): string {
  return `update verifier_push_attestations t set stage = 'evaluating_evidence', evidence_received_at = i.received_at
from ${takes}
where t.agent_id = i.agent_id and t.index = i.index and t.challenge = i.challenge
  and t.stage = 'awaiting_evidence' and t.challenges_expire_at > i.received_at
  and t.index = (select max(m.index) from verifier_push_attestations m where m.agent_id = t.agent_id)
  and (select ${agentVersionSql('g')} = i.agent_version
      or (i.record_over_stop and ${stoppedFromSql('g', 'i.agent_version')})
    from verifier_agents g where g.agent_id = t.agent_id)
returning t.agent_id`;
}

/**
 * `takeOwnership`: the row taken over while it is a push agent's with the version named — or, for a
 * failure to record over an operator's stop, only checked stopped from that version: a stopped row's
 * owner and lease are left as the operator left them (nobody polls it; `SAVE_ROUNDS` records such a
 * failure whoever holds the row).
 */
export const TAKE_OWNERSHIP = `
with taken as (
  update verifier_agents a set owner = ?, lease_expires_at = now() + make_interval(secs => ?)
  where a.agent_id = ? and a.attestation_mode = 'push' and ${agentVersionSql('a')} = ?
  returning 1
)
select 1 from taken
union all
select 1 from verifier_agents s
where ?::boolean and s.agent_id = ? and s.attestation_mode = 'push'
  and ${stoppedFromSql('s', '?')}`;
