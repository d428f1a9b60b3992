import type { Knex } from 'knex';
import type { AuditStreamRange } from './audit-export-scope.js';
import type { AuditRecord } from './audit-record.js';
import type { AuditTables } from './audit-tables.js';

/** A row of `audit_records` as the database driver gives it (`seq` a string for a bigint column, `details` and `batch_path` JSON text). */
export interface AuditRecordRow {
  stream: string;
  seq: string | number;
  at: string;
  actor: string;
  action: string;
  agent_id: string | null;
  details: string;
  prev_hash: string;
  hash: string;
  signature: string;
  batch_path: string;
}

/** Where the next page starts: after this record. */
interface Cursor {
  readonly stream: string;
  readonly seq: number;
}

/**
 * Reads the records of `ranges` (from `auditStreamRanges`, in the same snapshot) by stream then seq,
 * at most `batchSize` a statement, handing each batch to `onBatch` before the next is read: memory
 * holds one batch, whatever the size of the log. Keyset pagination on the primary key (stream, seq);
 * a page that reaches a stream before its range starts (a `--since` export) jumps to the range's
 * first seq instead of reading the records in between.
 */
export async function readAuditRecordPages(
  trx: Knex.Transaction,
  ranges: readonly AuditStreamRange[],
  stream: string | undefined,
  batchSize: number,
  tables: AuditTables,
  onBatch: (records: readonly AuditRecord[]) => Promise<void>,
): Promise<void> {
  const rangeOf = new Map(ranges.map((range) => [range.stream, range]));
  const first = ranges[0];
  let cursor: Cursor | undefined = first === undefined ? undefined : { stream: first.stream, seq: first.readFrom - 1 };
  while (cursor !== undefined) {
    const page = trx<AuditRecordRow>(tables.records)
      .select('*')
      .whereRaw('(stream, seq) > (?, ?)', [cursor.stream, cursor.seq])
      .orderBy([{ column: 'stream' }, { column: 'seq' }])
      .limit(batchSize);
    if (stream !== undefined) void page.where('stream', stream);
    const rows = (await page) as AuditRecordRow[];
    const batch: AuditRecord[] = [];
    let jump: Cursor | undefined;
    for (const row of rows) {
      const seq = Number(row.seq);
      const range = rangeOf.get(row.stream);
      // Ranges and pages are read in one snapshot: every stream with records has its range.
      if (range === undefined) throw new Error(`audit export: stream ${row.stream} has records but no range in the same snapshot`);
      if (seq < range.readFrom) {
        jump = { stream: row.stream, seq: range.readFrom - 1 };
        break;
      }
      batch.push(auditRecordFromRow(row));
    }
    if (batch.length > 0) await onBatch(batch);
    const last = rows[rows.length - 1];
    if (jump !== undefined) cursor = jump;
    else cursor = last === undefined || rows.length < batchSize ? undefined : { stream: last.stream, seq: Number(last.seq) };
  }
}

/** The record a stored row holds. */
export function auditRecordFromRow(row: AuditRecordRow): AuditRecord {
  return {
    stream: row.stream,
    seq: Number(row.seq),
    at: row.at,
    actor: row.actor,
    action: row.action,
    agentId: row.agent_id,
    details: JSON.parse(row.details) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
    signature: row.signature,
    batchPath: JSON.parse(row.batch_path) as string[],
  };
}
