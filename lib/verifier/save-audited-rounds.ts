import { lockAuditHeadsSql, type AuditHeads } from '../audit/audit-batch.js';
import { AUDIT_GENESIS_HASH } from '../audit/audit-record.js';
import { VERIFIER_AUDIT_TABLES } from '../audit/audit-tables.js';
import { fixedStatement, type Statements } from '../db/fixed-statement.js';
import { storableJson } from '../db/storable-text.js';
import type { RoundWrite } from './round-writer.js';
import { DECIDED_AT, ROUND_COLUMNS, rowOf, STORE_ROUNDS, STORED_ROUNDS, storedRoundOf, type StoredRound } from './save-rounds.js';
import { auditedVerdict } from './verdict-audit.js';

/**
 * `SAVE_ROUNDS` with the lock of the stored verdicts' audit heads as its last CTE: what were two
 * statements of the pull verdicts' transaction, each its own round trip, are one. The rows are stored
 * exactly as `SAVE_ROUNDS` stores them (`STORE_ROUNDS`, the same text). `heads` then creates and locks
 * the heads of the stored rows that get a record (`audited`, `auditedVerdict`), in stream order as
 * `lockAuditStreams` does, after the agents' rows (as before: the rounds' statement, then the lock).
 * Its `on conflict` update takes the newest version of a head whatever the statement's snapshot, after
 * waiting for a transaction that held it (another process's batch, an operator's change with its
 * record), and answers it as locked: the records are chained after it in the next statement
 * (`LockedAuditStreams`), so two batches appending to one stream chain one after the other. Answers
 * each stored write (`STORED_ROUNDS`) with its head, when it has one.
 */
const SAVE_AUDITED_ROUNDS = fixedStatement(
  'verifier_save_audited_rounds',
  `
with input as (
  select t.*, ${DECIDED_AT} as decided_at from jsonb_to_recordset(?::jsonb) as t(${ROUND_COLUMNS}, audited boolean)
), ${STORE_ROUNDS}, heads as (
  ${lockAuditHeadsSql(VERIFIER_AUDIT_TABLES, '(select agent_id as stream from input where audited and agent_id in (select agent_id from updated union select agent_id from recorded)) s')}
)
select r.agent_id, r.row_version, r.kept_state, h.seq as head_seq, h.hash as head_hash
from (${STORED_ROUNDS}) r left join heads h on h.stream = r.agent_id`,
);

/** A row of a rounds statement that also locks the audit heads (this file's and the push verdicts'): the stored round and its agent's head, if any. */
export interface AuditedRoundRow {
  readonly agent_id: string;
  readonly row_version: string | null;
  readonly kept_state: number | null;
  readonly head_seq: string | number | null;
  readonly head_hash: string | null;
}

/** `row`'s audit head, when its agent has one. */
export function auditHeadOf(row: AuditedRoundRow): { seq: number; hash: string } | undefined {
  return row.head_seq !== null && row.head_hash !== null ? { seq: Number(row.head_seq), hash: row.head_hash } : undefined;
}

/**
 * Stores `writes` (of distinct agents) with `SAVE_AUDITED_ROUNDS` through `run` (the batch's
 * transaction, which holds the heads until it ends); resolves as `saveRounds` does and adds the heads
 * it locked to `heads` (a stream already there, locked by an earlier group of the batch, is kept).
 */
export async function saveAuditedRounds(run: Statements, writes: readonly RoundWrite[], heads: AuditHeads): Promise<Map<string, StoredRound>> {
  const rows = (await run(SAVE_AUDITED_ROUNDS, [storableJson(writes.map(auditedRowOf)), AUDIT_GENESIS_HASH])) as AuditedRoundRow[];
  const stored = new Map<string, StoredRound>();
  for (const row of rows) {
    stored.set(row.agent_id, storedRoundOf(row));
    const head = auditHeadOf(row);
    if (head !== undefined && !heads.has(row.agent_id)) heads.set(row.agent_id, head);
  }
  return stored;
}

/** `rowOf` and whether the verdict gets an audit record. */
function auditedRowOf(write: RoundWrite): Record<string, unknown> {
  const row = rowOf(write);
  row['audited'] = auditedVerdict(write);
  return row;
}
