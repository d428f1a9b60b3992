import type { KeyObject } from 'node:crypto';
import { AuditChainCheck, type AuditChainResult } from './audit-chain.js';
import type { SignedAuditCheckpoint } from './audit-checkpoint.js';
import { isCheckpointLine, parseAuditCheckpointLine } from './audit-checkpoint-line.js';
import { isManifestLine, parseAuditLine, parseManifestLine } from './audit-export-format.js';
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
  readonly span?: { readonly fromSeq: number; readonly lastSeq: number; readonly lastAt: string; readonly pruned?: number; readonly checkpoints?: number };
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

/** What is kept of one stream while the file is read: its chain check and where its records are. */
interface StreamState {
  readonly check: AuditChainCheck;
  readonly firstLine: number;
  readonly fromSeq: number;
  /** Records and checkpoints of the stream read so far. */
  count: number;
  /** Records deleted by retention that the stream's checkpoints stand for, and how many checkpoints. */
  pruned: number;
  checkpoints: number;
  lastLine: number;
  lastSeq: number;
  lastAt: string;
  /** The record that broke the chain: its index in the stream and its line. */
  broken?: { readonly index: number; readonly line: number };
}

/**
 * Checks an export offline, one line at a time (`line`, then `end`): each stream's records (in file
 * order) must form an unbroken, signed chain, and, against the export's signed manifest (its last
 * line), start and end where it says (a complete export from seq 1), every stream it lists must be
 * there and no other, and the database's head must have named each stream's last record when the
 * export was made. A break is reported with the export's line number of the first bad record.
 *
 * It keeps one line (the manifest is known only once no line follows it) and a few numbers per
 * stream, never the records: an export of any length is checked in the memory of its streams.
 * A line that is neither a record nor the manifest throws AuditFormatError naming it.
 */
export class AuditExportVerifier {
  private readonly streams = new Map<string, StreamState>();
  private held: string | undefined;
  private lines = 0;
  private records = 0;

  constructor(
    private readonly publicKey: KeyObject,
    private readonly options: AuditExportOptions = {},
  ) {}

  /** The export's next line (without its `\n`); the one before it is checked now, as a record or a checkpoint. */
  line(text: string): void {
    if (this.held !== undefined) this.item(this.held, this.lines);
    this.held = text;
    this.lines += 1;
  }

  /** No line follows: the last one is the manifest when it has the manifest's start, else a record. */
  end(): AuditExportResult {
    const last = this.held;
    this.held = undefined;
    const sealed = last !== undefined && isManifestLine(last) ? parseManifestLine(last, this.lines) : undefined;
    if (last !== undefined && sealed === undefined) this.item(last, this.lines);
    const manifest = sealed !== undefined && auditManifestSigned(sealed, this.publicKey) ? sealed.manifest : undefined;
    const signed = manifest !== undefined;
    const listed = new Map((manifest?.streams ?? []).map((entry) => [entry.stream, entry]));
    const streams: AuditStreamResult[] = [...this.streams].map(([stream, state]) => {
      const result = manifest === undefined ? state.check.result() : checkListedStream(state.check, state.fromSeq, listed.get(stream), manifest);
      // With retention's checkpoints: how many records they stand for (absent for a stream with none).
      const pruned = state.checkpoints === 0 ? {} : { pruned: state.pruned, checkpoints: state.checkpoints };
      const span = { fromSeq: state.fromSeq, lastSeq: state.lastSeq, lastAt: state.lastAt, ...pruned };
      if (result.break === undefined) return { stream, result, span };
      return { stream, result, span, breakLine: lineOf(state, result.break.index) };
    });
    for (const entry of listed.values()) {
      if (!this.streams.has(entry.stream)) {
        streams.push({ stream: entry.stream, result: checkListedStream(new AuditChainCheck(this.publicKey), 0, entry, manifest as AuditManifest) });
      }
    }
    const problem = manifestProblem(sealed !== undefined, signed, this.options.unsealed === true);
    return {
      valid: problem === undefined && streams.every((s) => s.result.valid),
      records: this.records,
      ...(manifest === undefined ? {} : { manifest }),
      ...(problem === undefined ? {} : { problem }),
      streams,
    };
  }

  private item(line: string, lineNumber: number): void {
    if (isCheckpointLine(line)) this.checkpoint(parseAuditCheckpointLine(line, lineNumber), lineNumber);
    else this.record(parseAuditLine(line, lineNumber), lineNumber);
  }

  private record(record: AuditRecord, lineNumber: number): void {
    this.records += 1;
    const state = this.stateOf(record.stream, record.seq, lineNumber);
    // The chain is checked up to its first break: that item's index is the count of the stream's items before it.
    if (!state.check.add(record)) state.broken ??= { index: state.count, line: lineNumber };
    this.advance(state, lineNumber, record.seq);
    state.lastAt = record.at;
  }

  /** A checkpoint, in its stream's chain where the records it stands for were. */
  private checkpoint(checkpoint: SignedAuditCheckpoint, lineNumber: number): void {
    const state = this.stateOf(checkpoint.stream, checkpoint.fromSeq, lineNumber);
    if (!state.check.addCheckpoint(checkpoint)) state.broken ??= { index: state.count, line: lineNumber };
    state.pruned += checkpoint.toSeq - checkpoint.fromSeq + 1;
    state.checkpoints += 1;
    this.advance(state, lineNumber, checkpoint.toSeq);
  }

  private stateOf(stream: string, fromSeq: number, lineNumber: number): StreamState {
    let state = this.streams.get(stream);
    if (state === undefined) {
      state = { check: new AuditChainCheck(this.publicKey), firstLine: lineNumber, fromSeq, count: 0, pruned: 0, checkpoints: 0, lastLine: lineNumber, lastSeq: fromSeq, lastAt: '' };
      this.streams.set(stream, state);
    }
    return state;
  }

  private advance(state: StreamState, lineNumber: number, seq: number): void {
    state.count += 1;
    state.lastLine = lineNumber;
    state.lastSeq = seq;
  }
}

/** The line of a stream's record at `index`: a break is at the record that broke the chain, the first record or the last. */
function lineOf(state: StreamState, index: number): number {
  if (index === 0) return state.firstLine;
  return state.broken?.index === index ? state.broken.line : state.lastLine;
}

function manifestProblem(present: boolean, signed: boolean, unsealedAccepted: boolean): string | undefined {
  if (!present) return unsealedAccepted ? undefined : 'the export has no signed manifest: records removed from the end or the start of a stream, or whole streams, cannot be seen';
  return signed ? undefined : 'its manifest is not signed by the audit key: edited, or from another verifier';
}

/** One stream against its manifest entry: chain, ends (seq 1 first in a complete export), and the head found at export time. */
function checkListedStream(check: AuditChainCheck, firstSeq: number, entry: AuditManifestStream | undefined, manifest: AuditManifest): AuditChainResult {
  if (entry === undefined) {
    return { valid: false, checked: 0, break: { index: 0, seq: firstSeq, reason: 'unlisted-stream', message: `record 1 (seq ${firstSeq}): the signed manifest does not list this stream: it was added to the export` } };
  }
  // A complete export holds every stream from seq 1; the exporter writes it so, and a manifest saying otherwise is not trusted.
  const fromSeq = manifest.since === null ? 1 : entry.fromSeq;
  const chain = check.result({ fromSeq, lastSeq: entry.lastSeq, lastHash: entry.lastHash });
  if (!chain.valid || entry.head === undefined) return chain;
  const head = entry.head === null ? 'no head row' : `its head at seq ${entry.head.seq}`;
  return {
    valid: false,
    checked: chain.checked,
    break: { index: Math.max(chain.checked - 1, 0), seq: entry.lastSeq, reason: 'head-mismatch', message: `when exported, the database had ${head} but its last record was seq ${entry.lastSeq}: records were deleted or inserted` },
  };
}
