import type { Knex } from 'knex';
import type { SignedAuditCheckpoint } from './audit-checkpoint.js';
import { auditCheckpointTable, checkpointsBefore, prunedInRanges, type ExportedRecordKey } from './audit-checkpoint-rows.js';
import { auditStreamRanges, type AuditQuery, type AuditStreamRange } from './audit-export-scope.js';
import { sealAuditManifest, type AuditManifestStream, type SealedAuditManifest } from './audit-manifest.js';
import { AUDIT_GENESIS_HASH, type AuditRecord } from './audit-record.js';
import { readAuditRecordPages } from './audit-record-pages.js';
import type { AuditSigningKey } from './audit-signing-key.js';
import { VERIFIER_AUDIT_TABLES, type AuditTables } from './audit-tables.js';

/**
 * Records read a statement, and so held at once, by an export: typically about 100 KiB (a record is
 * about 0.5 KiB), 100 MB at most were every one a verdict at its size bound (about half a megabyte).
 */
export const AUDIT_EXPORT_BATCH = 200;

export interface AuditExportSummary {
  /** How many records were handed over. */
  readonly records: number;
  /** The last line of the export, signed by the audit key. */
  readonly manifest: SealedAuditManifest;
  /** Streams whose `audit_heads` row did not name their last record (flagged in the manifest too). */
  readonly headMismatches: readonly string[];
}

/** Takes one batch of records, in export order; `expected` is how many the export should hold in all. */
export type AuditRecordSink = (records: readonly AuditRecord[], expected: number) => Promise<void>;

/** Takes a signed checkpoint of records deleted by retention, in export order: before the record that follows them. */
export type AuditCheckpointSink = (checkpoint: SignedAuditCheckpoint) => Promise<void>;

interface StreamEnd {
  stream: string;
  seq: string | number;
  hash: string;
}

/**
 * Exports the records of `query` in order (stream, then seq), a batch at a time into `sink`, and signs
 * the manifest: per stream of the scope (every stream with a head row or a record), the first seq
 * exported, the last record in the database, and the head row when it does not name that record.
 * Ranges, records and heads are read in one snapshot (repeatable read), so an append running beside
 * the export cannot look like a mismatch; memory holds one batch and one entry a stream.
 *
 * Where retention deleted records (`AuditPruner`), their signed checkpoint goes to `checkpointSink`
 * between the records around them, so the chain still verifies; without a sink a pruned stream's
 * export does not verify (fail closed). A `--since` range's checkpoints are those after its anchor.
 */
export async function exportAuditLog(
  knex: Knex,
  key: AuditSigningKey,
  query: AuditQuery,
  sink: AuditRecordSink,
  batchSize: number = AUDIT_EXPORT_BATCH,
  tables: AuditTables = VERIFIER_AUDIT_TABLES,
  checkpointSink?: AuditCheckpointSink,
): Promise<AuditExportSummary> {
  const checkpointTable = checkpointSink === undefined ? undefined : auditCheckpointTable(tables);
  return knex.transaction(
    async (trx) => {
      // Between batches the transaction waits for the sink (a slow pipe, a full disk): the server's idle bound would end it.
      await trx.raw('set local idle_in_transaction_session_timeout = 0');
      const ranges = await auditStreamRanges(trx, query, tables);
      const heads = trx(tables.heads).select('stream', 'seq', 'hash');
      if (query.stream !== undefined) void heads.where('stream', query.stream);
      const streams = manifestStreams(ranges, (await heads) as StreamEnd[]);
      const pruned = checkpointTable === undefined ? 0 : await prunedInRanges(trx, checkpointTable, ranges);
      const expected = ranges.reduce((sum, range) => sum + range.lastSeq - range.readFrom + 1, 0) - pruned;
      const fromSeqOf = new Map(ranges.map((range) => [range.stream, range.fromSeq]));
      let records = 0;
      let previous: ExportedRecordKey | undefined;
      await readAuditRecordPages(trx, ranges, query.stream, batchSize, tables, async (batch) => {
        records += batch.length;
        if (checkpointTable === undefined || checkpointSink === undefined) return sink(batch, expected);
        const checkpoints = await checkpointsBefore(trx, checkpointTable, batch, previous);
        previous = batch[batch.length - 1];
        let start = 0;
        for (const [index, record] of batch.entries()) {
          const checkpoint = checkpoints.get(`${record.stream}\0${record.seq}`);
          // Not one before a `--since` range's anchor: the range starts at the anchor.
          if (checkpoint === undefined || checkpoint.fromSeq < (fromSeqOf.get(record.stream) ?? 1)) continue;
          if (index > start) await sink(batch.slice(start, index), expected);
          await checkpointSink(checkpoint);
          start = index;
        }
        await sink(batch.slice(start), expected);
      });
      const manifest = sealAuditManifest({ agent: query.stream ?? null, since: query.since ?? null, streams }, key.privateKey);
      return { records, manifest, headMismatches: streams.filter((entry) => entry.head !== undefined).map((entry) => entry.stream) };
    },
    { isolationLevel: 'repeatable read', readOnly: true },
  );
}

function manifestStreams(ranges: readonly AuditStreamRange[], heads: readonly StreamEnd[]): AuditManifestStream[] {
  const headOf = new Map(heads.map((head) => [head.stream, { seq: Number(head.seq), hash: head.hash }]));
  const rangeOf = new Map(ranges.map((range) => [range.stream, range]));
  const names = [...new Set([...headOf.keys(), ...rangeOf.keys()])].sort();
  return names.map((stream) => {
    const range = rangeOf.get(stream);
    // A stream with no record (a head row only) has the empty range 1 to 0.
    const entry = { stream, fromSeq: range?.fromSeq ?? 1, lastSeq: range?.lastSeq ?? 0, lastHash: range?.lastHash ?? AUDIT_GENESIS_HASH };
    const head = headOf.get(stream);
    if (head === undefined) return { ...entry, head: null };
    return head.seq === entry.lastSeq && head.hash === entry.lastHash ? entry : { ...entry, head };
  });
}
