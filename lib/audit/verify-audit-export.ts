import type { KeyObject } from 'node:crypto';
import { verifyAuditChain, type AuditChainResult } from './audit-chain.js';
import { parseAuditExport } from './audit-export-format.js';
import { auditManifestSigned, type AuditManifest, type AuditManifestStream } from './audit-manifest.js';
import type { AuditRecord } from './audit-record.js';

export interface AuditExportOptions {
  /**
   * Accept an export without a manifest (made before manifests): its chains are checked, but records
   * removed from the end of a stream, from the start, or whole streams, cannot be seen.
   */
  readonly unsealed?: boolean;
}

export interface AuditStreamResult {
  readonly stream: string;
  readonly result: AuditChainResult;
  /** The export's line of the first bad record (absent for a stream with no record in the export). */
  readonly breakLine?: number;
  /**
   * The seqs the file holds for the stream and the `at` of its last record (absent when it holds none):
   * what the export covers, so a `--since` export or an older one is not read as the whole, current history.
   */
  readonly span?: { readonly fromSeq: number; readonly lastSeq: number; readonly lastAt: string };
}

export interface AuditExportResult {
  readonly valid: boolean;
  readonly records: number;
  /** The export's signed manifest, when it has one whose signature holds. */
  readonly manifest?: AuditManifest;
  /** Why the export as a whole is refused, beside its streams: no manifest, or one the key did not sign. */
  readonly problem?: string;
  /** One result per stream, in the order the streams first appear, then the manifest's streams with no record. */
  readonly streams: readonly AuditStreamResult[];
}

/**
 * Checks an export offline: each stream's records (in file order) must form an unbroken, signed
 * chain, and, against the export's signed manifest, start and end where it says (a complete export
 * from seq 1), every stream it lists must be there and no other, and the database's head must have
 * named each stream's last record when the export was made. A break is reported with the export's
 * line number of the first bad record.
 *
 * @throws AuditFormatError when a line is neither a record nor the manifest.
 */
export function verifyAuditExport(text: string, publicKey: KeyObject, options: AuditExportOptions = {}): AuditExportResult {
  const { records, manifest: sealed } = parseAuditExport(text);
  const byStream = new Map<string, { records: AuditRecord[]; lines: number[] }>();
  records.forEach((record, index) => {
    const entry = byStream.get(record.stream) ?? { records: [], lines: [] };
    entry.records.push(record);
    entry.lines.push(index + 1);
    byStream.set(record.stream, entry);
  });
  const signed = sealed !== undefined && auditManifestSigned(sealed, publicKey);
  const manifest = signed ? sealed.manifest : undefined;
  const listed = new Map((manifest?.streams ?? []).map((entry) => [entry.stream, entry]));
  const streams: AuditStreamResult[] = [...byStream].map(([stream, entry]) => {
    const result = manifest === undefined ? verifyAuditChain(entry.records, publicKey) : checkListedStream(entry.records, listed.get(stream), manifest, publicKey);
    const first = entry.records[0] as AuditRecord;
    const last = entry.records[entry.records.length - 1] as AuditRecord;
    const span = { fromSeq: first.seq, lastSeq: last.seq, lastAt: last.at };
    return result.break === undefined ? { stream, result, span } : { stream, result, span, breakLine: entry.lines[result.break.index] as number };
  });
  for (const entry of listed.values()) {
    if (!byStream.has(entry.stream)) streams.push({ stream: entry.stream, result: checkListedStream([], entry, manifest as AuditManifest, publicKey) });
  }
  const problem = manifestProblem(sealed !== undefined, signed, options.unsealed === true);
  return {
    valid: problem === undefined && streams.every((s) => s.result.valid),
    records: records.length,
    ...(manifest === undefined ? {} : { manifest }),
    ...(problem === undefined ? {} : { problem }),
    streams,
  };
}

function manifestProblem(present: boolean, signed: boolean, unsealedAccepted: boolean): string | undefined {
  if (!present) return unsealedAccepted ? undefined : 'the export has no signed manifest: records removed from the end or the start of a stream, or whole streams, cannot be seen';
  return signed ? undefined : 'its manifest is not signed by the audit key: edited, or from another verifier';
}

/** One stream against its manifest entry: chain, ends (seq 1 first in a complete export), and the head found at export time. */
function checkListedStream(records: readonly AuditRecord[], entry: AuditManifestStream | undefined, manifest: AuditManifest, publicKey: KeyObject): AuditChainResult {
  const seq = records[0]?.seq ?? 0;
  if (entry === undefined) {
    return { valid: false, checked: 0, break: { index: 0, seq, reason: 'unlisted-stream', message: `record 1 (seq ${seq}): the signed manifest does not list this stream: it was added to the export` } };
  }
  // A complete export holds every stream from seq 1; the exporter writes it so, and a manifest saying otherwise is not trusted.
  const fromSeq = manifest.since === null ? 1 : entry.fromSeq;
  const chain = verifyAuditChain(records, publicKey, { fromSeq, lastSeq: entry.lastSeq, lastHash: entry.lastHash });
  if (!chain.valid || entry.head === undefined) return chain;
  const head = entry.head === null ? 'no head row' : `its head at seq ${entry.head.seq}`;
  const index = Math.max(records.length - 1, 0);
  return {
    valid: false,
    checked: records.length,
    break: { index, seq: entry.lastSeq, reason: 'head-mismatch', message: `when exported, the database had ${head} but its last record was seq ${entry.lastSeq}: records were deleted or inserted` },
  };
}
