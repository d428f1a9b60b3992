import type { KeyObject } from 'node:crypto';
import type { Knex } from 'knex';
import { exportAuditLog, type AuditExportSummary } from '../../../lib/audit/audit-export.js';
import type { AuditQuery } from '../../../lib/audit/audit-export-scope.js';
import { formatAuditLine } from '../../../lib/audit/audit-export-format.js';
import { formatAuditManifestLine, sealAuditManifest, type AuditManifestStream, type SealedAuditManifest } from '../../../lib/audit/audit-manifest.js';
import type { AuditRecord } from '../../../lib/audit/audit-record.js';
import type { AuditSigningKey } from '../../../lib/audit/audit-signing-key.js';
import type { AuditTables } from '../../../lib/audit/audit-tables.js';

/** An export's records (collected: test logs are small) and its summary. */
export interface CollectedExport extends Omit<AuditExportSummary, 'records'> {
  readonly records: readonly AuditRecord[];
}

/** The text `ironlime audit export` writes for an export: its records, then its manifest line. */
export function exportText(exported: { readonly records: readonly AuditRecord[]; readonly manifest: SealedAuditManifest }): string {
  return `${exported.records.map(formatAuditLine).join('')}${formatAuditManifestLine(exported.manifest)}`;
}

/** An export made by the library (of the verifier's log unless `tables` names another), its records collected, read `batchSize` records at a time (the default batch when absent). */
export async function exportCollected(knex: Knex, key: AuditSigningKey, query: AuditQuery, batchSize?: number, tables?: AuditTables): Promise<CollectedExport> {
  const records: AuditRecord[] = [];
  const summary = await exportAuditLog(knex, key, query, async (batch) => void records.push(...batch), batchSize, tables);
  return { ...summary, records };
}

/**
 * An export of `records` (one or more whole streams, or with `since` their ends) with the manifest
 * the exporter would sign for them when every head names its stream's last record.
 */
export function sealedExport(records: readonly AuditRecord[], key: KeyObject, since: string | null = null): string {
  const byStream = new Map<string, AuditRecord[]>();
  for (const record of records) byStream.set(record.stream, [...(byStream.get(record.stream) ?? []), record]);
  const streams: AuditManifestStream[] = [...byStream.keys()].sort().map((stream) => {
    const list = byStream.get(stream) as AuditRecord[];
    const last = list[list.length - 1] as AuditRecord;
    return { stream, fromSeq: since === null ? 1 : (list[0] as AuditRecord).seq, lastSeq: last.seq, lastHash: last.hash };
  });
  return `${records.map(formatAuditLine).join('')}${formatAuditManifestLine(sealAuditManifest({ agent: null, since, streams }, key))}`;
}
