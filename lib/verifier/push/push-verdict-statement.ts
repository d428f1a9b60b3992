import { lockAuditHeadsSql, type AuditHeads } from '../../audit/audit-batch.js';
import { AUDIT_GENESIS_HASH } from '../../audit/audit-record.js';
import { VERIFIER_AUDIT_TABLES } from '../../audit/audit-tables.js';
import { fixedStatement, type Statements } from '../../db/fixed-statement.js';
import { storableJson } from '../../db/storable-text.js';
import type { RoundWrite } from '../round-writer.js';
import { DECIDED_AT, ROUND_COLUMNS, rowOf, STORE_ROUNDS, STORED_ROUNDS, storedRoundOf, type StoredRound } from '../save-rounds.js';
import { auditHeadOf, type AuditedRoundRow } from '../save-audited-rounds.js';
import { auditedVerdict } from '../verdict-audit.js';
import type { JudgedEvidenceTake } from './push-repository.js';
import { takeJudgedEvidenceSql } from './push-statements.js';

/**
 * The push verdicts' first statement, in their transaction: what were three statements, each its own
 * round trip — the evidence take (`TAKE_JUDGED_EVIDENCE`), the rounds (`SAVE_ROUNDS`) and the lock of
 * the verdicts' audit heads (`lockAuditHeadsSql`) — as CTEs of one. `taken` takes the evidence of the
 * rows that name a take; `input` keeps the rows whose take succeeded (or that need none), and only
 * those are stored, exactly as `SAVE_ROUNDS` stores them (`STORE_ROUNDS`, the same text): a verdict
 * whose take fails is not stored, and a take that succeeds stays taken when its verdict is not stored
 * (the row changed since: the caller reads it again). CTEs share one snapshot, so the take sees the
 * agent's row as the rounds' update first finds it; that update waits for a row lock held by another
 * transaction and then checks its conditions against the row that transaction left, as before, so the
 * outcome is the one the three statements had. `heads` locks the audit heads of the stored verdicts
 * that get a record (`audited`, `auditedVerdict`), in stream order as `lockAuditStreams` does, and
 * answers them as locked (its update is of the newest row version, committed by whichever transaction
 * held the lock): the records are chained after them in the next statement (`LockedAuditStreams`).
 * Answers each stored write (`STORED_ROUNDS`) with its head, and each take (`stored` false).
 */
const PUSH_SAVE_ROUNDS = fixedStatement(
  'push_save_rounds',
  `
with given as (
  select t.*, ${DECIDED_AT} as decided_at from jsonb_to_recordset(?::jsonb) as t(${ROUND_COLUMNS},
    take_index int, take_challenge text, take_received_at timestamptz, take_agent_version text, take_over_stop boolean, audited boolean)
), taken as (
  ${takeJudgedEvidenceSql(`(select agent_id, take_index as index, take_challenge as challenge, take_received_at as received_at,
      take_agent_version as agent_version, take_over_stop as record_over_stop from given where take_index is not null) i`)}
), input as (
  select * from given where take_index is null or agent_id in (select agent_id from taken)
), ${STORE_ROUNDS}, heads as (
  ${lockAuditHeadsSql(VERIFIER_AUDIT_TABLES, '(select agent_id as stream from input where audited and agent_id in (select agent_id from updated union select agent_id from recorded)) s')}
)
select r.agent_id, r.row_version, r.kept_state, h.seq as head_seq, h.hash as head_hash, true as stored
from (${STORED_ROUNDS}) r left join heads h on h.stream = r.agent_id
union all
select agent_id, null, null, null, null, false from taken`,
);

/** A push verdict's write: the round, and the take its evidence still needs (none: a silence's failure, or evidence taken before). */
export interface PushSave {
  readonly write: RoundWrite;
  readonly take: JudgedEvidenceTake | undefined;
}

/** What `savePushRounds` did: the writes stored (by agent), the agents whose evidence it took, and the audit heads it locked. */
export interface PushSaved {
  readonly stored: Map<string, StoredRound>;
  readonly taken: Set<string>;
  readonly heads: AuditHeads;
}

/** Stores `saves` (of distinct agents) with `PUSH_SAVE_ROUNDS`, through `run` (the verdicts' transaction). */
export async function savePushRounds(run: Statements, saves: readonly PushSave[]): Promise<PushSaved> {
  const rows = (await run(PUSH_SAVE_ROUNDS, [storableJson(saves.map(pushRowOf)), AUDIT_GENESIS_HASH])) as (AuditedRoundRow & { stored: boolean })[];
  const saved: PushSaved = { stored: new Map(), taken: new Set(), heads: new Map() };
  for (const row of rows) {
    if (!row.stored) {
      saved.taken.add(row.agent_id);
      continue;
    }
    saved.stored.set(row.agent_id, storedRoundOf(row));
    const head = auditHeadOf(row);
    if (head !== undefined) saved.heads.set(row.agent_id, head);
  }
  return saved;
}

/**
 * `rowOf` with the take's columns and whether the verdict gets an audit record, added to `rowOf`'s own
 * new object: spread into a copy, the forty-odd members were written twice per verdict (the largest
 * allocation of a push attestation, 7.6 KB, eighteenth pass of docs/push.md). The members keep the
 * order the spread gave them, so the statement's JSON text is the same.
 */
function pushRowOf({ write, take }: PushSave): Record<string, unknown> {
  const row = rowOf(write);
  row['take_index'] = take?.index ?? null;
  row['take_challenge'] = take?.challenge ?? null;
  row['take_received_at'] = take?.receivedAt.toISOString() ?? null;
  row['take_agent_version'] = take?.agentVersion ?? null;
  row['take_over_stop'] = take?.recordOverStop === true;
  row['audited'] = auditedVerdict(write);
  return row;
}
