import type { Knex } from 'knex';
import { AuditLog, type AuditQuery } from './audit-log.js';
import { sealAuditManifest, type AuditManifestStream, type SealedAuditManifest } from './audit-manifest.js';
import { AUDIT_GENESIS_HASH, type AuditRecord } from './audit-record.js';
import type { AuditSigningKey } from './audit-signing-key.js';

export interface AuditExport {
  readonly records: readonly AuditRecord[];
  /** The last line of the export, signed by the audit key. */
  readonly manifest: SealedAuditManifest;
  /** Streams whose `audit_heads` row did not name their last record (flagged in the manifest too). */
  readonly headMismatches: readonly string[];
}

interface StreamEnd {
  stream: string;
  seq: string | number;
  hash: string;
}

/**
 * Reads an export's records and signs its manifest: per stream of the scope (every stream with a
 * head row or a record), the first seq exported, the last record in the database, and the head row
 * when it does not name that record. Records and heads are read in one snapshot (repeatable read),
 * so an append running beside the export cannot look like a mismatch.
 */
export async function exportAuditLog(knex: Knex, key: AuditSigningKey, query: AuditQuery): Promise<AuditExport> {
  return knex.transaction(
    async (trx) => {
      const records = await new AuditLog(trx, key).list(query);
      const heads = trx('audit_heads').select('stream', 'seq', 'hash');
      const lasts = trx('audit_records').distinctOn('stream').select('stream', 'seq', 'hash').orderBy([{ column: 'stream' }, { column: 'seq', order: 'desc' }]);
      if (query.stream !== undefined) {
        void heads.where('stream', query.stream);
        void lasts.where('stream', query.stream);
      }
      const streams = manifestStreams(records, (await heads) as StreamEnd[], (await lasts) as StreamEnd[], query.since);
      const manifest = sealAuditManifest({ agent: query.stream ?? null, since: query.since ?? null, streams }, key.privateKey);
      return { records, manifest, headMismatches: streams.filter((entry) => entry.head !== undefined).map((entry) => entry.stream) };
    },
    { isolationLevel: 'repeatable read', readOnly: true },
  );
}

function manifestStreams(records: readonly AuditRecord[], heads: readonly StreamEnd[], lasts: readonly StreamEnd[], since: string | undefined): AuditManifestStream[] {
  const headOf = new Map(heads.map((head) => [head.stream, { seq: Number(head.seq), hash: head.hash }]));
  const lastOf = new Map(lasts.map((last) => [last.stream, { seq: Number(last.seq), hash: last.hash }]));
  const firstExported = new Map<string, number>();
  for (const record of records) {
    // A `--since` range starts with its anchor (before the time, and not the stream's last record); with none, the stream must start at seq 1.
    const anchor = since !== undefined && record.at < since && record.seq < (lastOf.get(record.stream)?.seq ?? 0);
    if (!firstExported.has(record.stream)) firstExported.set(record.stream, anchor ? record.seq : 1);
  }
  const names = [...new Set([...headOf.keys(), ...lastOf.keys()])].sort();
  return names.map((stream) => {
    const last = lastOf.get(stream) ?? { seq: 0, hash: AUDIT_GENESIS_HASH };
    const head = headOf.get(stream);
    // Every stream with a record has its last one exported; one with none has the empty range 1 to 0.
    const fromSeq = firstExported.get(stream) ?? 1;
    const entry = { stream, fromSeq, lastSeq: last.seq, lastHash: last.hash };
    if (head === undefined) return { ...entry, head: null };
    return head.seq === last.seq && head.hash === last.hash ? entry : { ...entry, head };
  });
}
