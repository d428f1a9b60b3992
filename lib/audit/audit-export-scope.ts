import type { Knex } from 'knex';
import { VERIFIER_AUDIT_TABLES, type AuditTables } from './audit-tables.js';

export interface AuditQuery {
  /** One stream (an agent id, or `fleet`); absent means every stream. */
  readonly stream?: string;
  /**
   * Per stream, the records from the first one at or after this ISO 8601 UTC time, and every later
   * seq whatever its time: seq order is commit order, and a writer that waited for the head lock (or
   * whose clock is behind) can have an earlier `at` than the record before it. A stream with no record
   * since the time still gives its last record: so every stream's end is checked against the manifest
   * (a newest record whose `at` was edited to before the time cannot drop out unseen). The record
   * before that first one comes first, when the stream has one: it anchors the range, so a record
   * deleted at its start breaks the chain as one deleted in the middle does.
   */
  readonly since?: string;
}

/** What an export holds of one stream that has records. */
export interface AuditStreamRange {
  readonly stream: string;
  /** The first seq read: the anchor, else the range's first record (seq 1 unless records were deleted). */
  readonly readFrom: number;
  /** The manifest's `from_seq`: 1 for a complete export; for `--since`, the anchor's seq, or 1 when there is none. */
  readonly fromSeq: number;
  /** The stream's last record. */
  readonly lastSeq: number;
  readonly lastHash: string;
}

interface RangeRow {
  stream: string;
  last_seq: string | number;
  last_hash: string;
  start_seq: string | number;
  anchor_seq: string | number | null;
}

/**
 * Per stream with records in the scope of `query`, where its export starts and ends: one row a
 * stream, in the database's order of streams (the order records are read in), inside the caller's
 * snapshot. The records themselves are read afterwards, a batch at a time (`readAuditRecordPages`).
 */
export async function auditStreamRanges(trx: Knex.Transaction, query: AuditQuery, tables: AuditTables = VERIFIER_AUDIT_TABLES): Promise<AuditStreamRange[]> {
  // A complete export starts at each stream's first record; `--since` at its first one since the time, else at its last.
  const start =
    query.since === undefined ? trx.raw('min(seq) as start_seq') : trx.raw('coalesce(min(seq) filter (where at >= ?), max(seq)) as start_seq', [query.since]);
  const ends = trx(tables.records).select('stream', trx.raw('max(seq) as last_seq'), start).groupBy('stream');
  if (query.stream !== undefined) void ends.where('stream', query.stream);
  const rows = (await trx
    .with('ends', ends)
    .select(
      'ends.stream',
      'ends.last_seq',
      'ends.start_seq',
      'last.hash as last_hash',
      trx.raw(`(select max(earlier.seq) from ${tables.records} earlier where earlier.stream = ends.stream and earlier.seq < ends.start_seq) as anchor_seq`),
    )
    .from('ends')
    .join(`${tables.records} as last`, (on) => on.on('last.stream', '=', 'ends.stream').andOn('last.seq', '=', 'ends.last_seq'))
    .orderBy('ends.stream')) as RangeRow[];
  return rows.map((row) => {
    const anchor = row.anchor_seq === null ? undefined : Number(row.anchor_seq);
    return {
      stream: row.stream,
      readFrom: anchor ?? Number(row.start_seq),
      // With no record before the range, a stream must start at seq 1: records deleted at its start show as `truncated`.
      fromSeq: query.since === undefined ? 1 : (anchor ?? 1),
      lastSeq: Number(row.last_seq),
      lastHash: row.last_hash,
    };
  });
}
