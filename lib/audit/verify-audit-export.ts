import type { KeyObject } from 'node:crypto';
import { verifyAuditChain, type AuditChainResult } from './audit-chain.js';
import { parseAuditExport } from './audit-export-format.js';
import type { AuditRecord } from './audit-record.js';

export interface AuditExportResult {
  readonly valid: boolean;
  readonly records: number;
  /** One result per stream, in the order the streams first appear. */
  readonly streams: ReadonlyArray<{ readonly stream: string; readonly result: AuditChainResult; readonly breakLine?: number }>;
}

/**
 * Checks an export offline: each stream's records (in file order) must form an unbroken, signed
 * chain. A break is reported with the export's line number of the first bad record.
 *
 * @throws AuditFormatError when a line is not a record.
 */
export function verifyAuditExport(text: string, publicKey: KeyObject): AuditExportResult {
  const records = parseAuditExport(text);
  const byStream = new Map<string, { records: AuditRecord[]; lines: number[] }>();
  records.forEach((record, index) => {
    const entry = byStream.get(record.stream) ?? { records: [], lines: [] };
    entry.records.push(record);
    entry.lines.push(index + 1);
    byStream.set(record.stream, entry);
  });
  const streams = [...byStream].map(([stream, entry]) => {
    const result = verifyAuditChain(entry.records, publicKey);
    return result.break === undefined ? { stream, result } : { stream, result, breakLine: entry.lines[result.break.index] as number };
  });
  return { valid: streams.every((s) => s.result.valid), records: records.length, streams };
}
