import type { Knex } from 'knex';
import type { SignedAuditCheckpoint } from './audit-checkpoint.js';
import type { AuditRecord } from './audit-record.js';
import { VERIFIER_AUDIT_TABLES, type AuditTables } from './audit-tables.js';

/** The verifier's checkpoints (migration `create-audit-checkpoints`). */
export const AUDIT_CHECKPOINTS_TABLE = 'audit_checkpoints';

/**
 * The checkpoint table of a log: only the verifier's is pruned (`AuditPruner`). The broker's log is a
 * few records per admin change and is kept whole: it has none.
 */
export function auditCheckpointTable(tables: AuditTables): string | undefined {
  return tables === VERIFIER_AUDIT_TABLES ? AUDIT_CHECKPOINTS_TABLE : undefined;
}

/** A row of `audit_checkpoints` as the driver gives it (a bigint as a string). */
export interface AuditCheckpointRow {
  stream: string;
  from_seq: string | number;
  to_seq: string | number;
  prev_hash: string;
  hash: string;
  at: string;
  signature: string;
}

export function auditCheckpointFromRow(row: AuditCheckpointRow): SignedAuditCheckpoint {
  return { stream: row.stream, fromSeq: Number(row.from_seq), toSeq: Number(row.to_seq), prevHash: row.prev_hash, hash: row.hash, at: row.at, signature: row.signature };
}

export function auditCheckpointRow(checkpoint: SignedAuditCheckpoint): AuditCheckpointRow {
  return {
    stream: checkpoint.stream,
    from_seq: checkpoint.fromSeq,
    to_seq: checkpoint.toSeq,
    prev_hash: checkpoint.prevHash,
    hash: checkpoint.hash,
    at: checkpoint.at,
    signature: checkpoint.signature,
  };
}

/** Where an export's last batch ended: the record the next one follows. */
export interface ExportedRecordKey {
  readonly stream: string;
  readonly seq: number;
}

/**
 * The checkpoints that come right before records of `batch` (read in export order, after the record
 * `previous`): a checkpoint is written before the record after the run it stands for, so only a record
 * that does not follow its stream's previous exported record needs one looked up (few: one per kept
 * run). Keyed `stream NUL seq` of the record each one comes before.
 */
export async function checkpointsBefore(
  trx: Knex.Transaction,
  table: string,
  batch: readonly AuditRecord[],
  previous: ExportedRecordKey | undefined,
): Promise<Map<string, SignedAuditCheckpoint>> {
  const wanted: { stream: string; to_seq: number }[] = [];
  let before = previous;
  for (const record of batch) {
    const follows = before !== undefined && before.stream === record.stream && before.seq === record.seq - 1;
    if (!follows && record.seq > 1) wanted.push({ stream: record.stream, to_seq: record.seq - 1 });
    before = record;
  }
  if (wanted.length === 0) return new Map();
  const rows = (await trx
    .select('c.*')
    .from(`${table} as c`)
    .joinRaw(`join jsonb_to_recordset(?::jsonb) as w(stream text, to_seq bigint) on w.stream = c.stream and w.to_seq = c.to_seq`, [JSON.stringify(wanted)])) as AuditCheckpointRow[];
  return new Map(rows.map((row) => [`${row.stream}\0${Number(row.to_seq) + 1}`, auditCheckpointFromRow(row)]));
}

/**
 * Records deleted by retention inside the exported ranges (checkpoints from `readFrom` on, per
 * stream): an export's expected count of records is its ranges' lengths less these.
 */
export async function prunedInRanges(trx: Knex.Transaction, table: string, ranges: readonly { stream: string; readFrom: number }[]): Promise<number> {
  if (ranges.length === 0) return 0;
  const [row] = (await trx
    .select(trx.raw('coalesce(sum(c.to_seq - c.from_seq + 1), 0) as pruned'))
    .from(`${table} as c`)
    .joinRaw(`join jsonb_to_recordset(?::jsonb) as r(stream text, read_from bigint) on r.stream = c.stream and c.from_seq >= r.read_from`, [
      JSON.stringify(ranges.map((range) => ({ stream: range.stream, read_from: range.readFrom }))),
    ])) as { pruned: string | number }[];
  return Number(row?.pruned ?? 0);
}
