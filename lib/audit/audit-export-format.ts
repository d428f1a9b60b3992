import { isAuditPath, MAX_AUDIT_PATH_STEPS } from './audit-batch-signature.js';
import { AuditFormatError } from './audit-errors.js';
import { AUDIT_MANIFEST_FORMAT, type AuditManifestStream, type SealedAuditManifest } from './audit-manifest.js';
import type { AuditRecord } from './audit-record.js';
import { canonicalJson } from '../bytes/canonical-json.js';

const HEX64 = /^[0-9a-f]{64}$/;
/**
 * Bound on one exported record line. The largest record stored is a verdict's: its details hold at
 * most `MAX_AUDITED_FAILURES` failures of bounded size (lib/verifier/verdict-audit.ts), well under this.
 */
export const MAX_AUDIT_LINE_BYTES = 1024 * 1024;
/**
 * Bound on the manifest line, which grows with the number of streams (about 150 bytes each, at most
 * about 400 with the longest stream names): 64 MiB is some 160,000 to 400,000 streams.
 */
export const MAX_AUDIT_MANIFEST_LINE_BYTES = 64 * 1024 * 1024;
/** How the manifest line starts (canonical JSON: `manifest` sorts before `signature`); a record line starts `{"action":`. */
export const MANIFEST_LINE_START = '{"manifest":';
/**
 * Bound on the nesting of a record's details (ours are two or three levels deep). Hashing is recursive
 * (`canonicalJson`), so a line of a megabyte of brackets would overflow the stack without it.
 */
const MAX_DETAILS_DEPTH = 64;

const FIELDS = ['action', 'actor', 'agent_id', 'at', 'details', 'hash', 'prev_hash', 'seq', 'signature', 'stream'];
/** A record signed as part of a batch also carries its path to the signed root. */
const BATCH_FIELDS = [...FIELDS, 'batch_path'].sort();
const FIELD_KEYS = FIELDS.join(',');
const BATCH_FIELD_KEYS = BATCH_FIELDS.join(',');

/**
 * One record as one line of an export: canonical JSON, so the same records give the same bytes.
 * `batch_path` is written only for a record signed in a batch, so a record signed alone gives the
 * line it gave before batches existed.
 */
export function formatAuditLine(record: AuditRecord): string {
  return `${canonicalJson({
    action: record.action,
    actor: record.actor,
    agent_id: record.agentId,
    at: record.at,
    batch_path: record.batchPath.length === 0 ? undefined : record.batchPath,
    details: record.details,
    hash: record.hash,
    prev_hash: record.prevHash,
    seq: record.seq,
    signature: record.signature,
    stream: record.stream,
  })}\n`;
}

export interface ParsedAuditExport {
  readonly records: AuditRecord[];
  /** The signed manifest of the last line; absent in an export made before manifests (format 1). */
  readonly manifest?: SealedAuditManifest;
}

/**
 * Reads an export back. Each line must be a JSON object with exactly the fields `formatAuditLine`
 * writes (`batch_path` or not), of the right types, but the last, which may be the manifest
 * (`formatAuditManifestLine`); anything else is an AuditFormatError naming the line.
 */
export function parseAuditExport(text: string): ParsedAuditExport {
  const lines = auditExportTextLines(text);
  const last = lines[lines.length - 1];
  const manifest = last !== undefined && isManifestLine(last) ? parseManifestLine(last, lines.length) : undefined;
  if (manifest !== undefined) lines.pop();
  const records = lines.map((line, index) => parseAuditLine(line, index + 1));
  return manifest === undefined ? { records } : { records, manifest };
}

/** An export's lines: split at each `\n`, the end of the last line not starting another. */
export function auditExportTextLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** True when `line` has the manifest's start: only the last line of an export may be read as one. */
export function isManifestLine(line: string): boolean {
  return line.startsWith(MANIFEST_LINE_START);
}

/**
 * The manifest line. It is not held to the record line bound: it grows with the number of streams
 * (about 150 bytes each), and its shape is checked field by field, so no nesting reaches the hashing.
 */
export function parseManifestLine(line: string, lineNumber: number): SealedAuditManifest {
  const { value, fail } = readAuditLineJson(line, lineNumber, MAX_AUDIT_MANIFEST_LINE_BYTES, 'manifest');
  const outer = exactObject(value, ['manifest', 'signature']) ?? fail('must be an object with exactly manifest and signature');
  const signature = typeof outer['signature'] === 'string' ? outer['signature'] : fail('signature must be a string');
  const body = exactObject(outer['manifest'], ['agent', 'format', 'since', 'streams']) ?? fail('must have exactly agent, format, since and streams');
  if (body['format'] !== AUDIT_MANIFEST_FORMAT) fail(`format must be ${AUDIT_MANIFEST_FORMAT}`);
  const agent = body['agent'];
  const since = body['since'];
  if ((agent !== null && typeof agent !== 'string') || (since !== null && typeof since !== 'string')) fail('agent and since must be strings or null');
  const entries = body['streams'];
  if (!Array.isArray(entries)) return fail('streams must be a list');
  const streams = entries.map((entry: unknown, index) => manifestStream(entry) ?? fail(`stream ${index + 1} must have exactly stream, from_seq, last_seq, last_hash (and head), of the right types`));
  if (new Set(streams.map((entry) => entry.stream)).size !== streams.length) fail('a stream is listed twice');
  return { manifest: { agent: agent as string | null, since: since as string | null, streams }, signature };
}

function manifestStream(value: unknown): AuditManifestStream | undefined {
  const fields = exactObject(value, ['from_seq', 'last_hash', 'last_seq', 'stream']) ?? exactObject(value, ['from_seq', 'head', 'last_hash', 'last_seq', 'stream']);
  if (fields === undefined) return undefined;
  const { stream, from_seq: fromSeq, last_seq: lastSeq, last_hash: lastHash } = fields;
  if (typeof stream !== 'string' || !isSeq(fromSeq, 1) || !isSeq(lastSeq, 0) || typeof lastHash !== 'string' || !HEX64.test(lastHash)) return undefined;
  const entry = { stream, fromSeq, lastSeq, lastHash };
  if (!('head' in fields)) return entry;
  if (fields['head'] === null) return { ...entry, head: null };
  const head = exactObject(fields['head'], ['hash', 'seq']);
  if (head === undefined || !isSeq(head['seq'], 0) || typeof head['hash'] !== 'string' || !HEX64.test(head['hash'])) return undefined;
  return { ...entry, head: { seq: head['seq'], hash: head['hash'] } };
}

/** One line of an export read as JSON, and how to refuse it. */
export interface AuditLineJson {
  readonly value: unknown;
  /** Throws the AuditFormatError naming the line (and its kind) and `why`. */
  readonly fail: (why: string) => never;
}

/**
 * The common start of every line parser: `line` is at most `maxBytes` long (checked before parsing)
 * and is JSON, else an AuditFormatError `line <n>: [<kind>: ]<why>`.
 */
export function readAuditLineJson(line: string, lineNumber: number, maxBytes: number, kind?: 'manifest' | 'checkpoint'): AuditLineJson {
  const prefix = kind === undefined ? `line ${lineNumber}: ` : `line ${lineNumber}: ${kind}: `;
  const fail = (why: string): never => {
    throw new AuditFormatError(`${prefix}${why}`);
  };
  if (Buffer.byteLength(line) > maxBytes) fail(`longer than ${maxBytes} bytes`);
  try {
    return { value: JSON.parse(line) as unknown, fail };
  } catch {
    return fail('not JSON');
  }
}

/** `value` when it is a plain object with exactly `keys` (given in sorted order), else undefined. */
export function exactObject(value: unknown, keys: readonly string[]): Record<string, unknown> | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  return Object.keys(value).sort().join(',') === keys.join(',') ? (value as Record<string, unknown>) : undefined;
}

/** Whether `value` is a whole number from `from` on (a sequence number). */
export function isSeq(value: unknown, from: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= from;
}

/** One record line, at most `MAX_AUDIT_LINE_BYTES`, with exactly the fields `formatAuditLine` writes. */
export function parseAuditLine(line: string, lineNumber: number): AuditRecord {
  const { value, fail } = readAuditLineJson(line, lineNumber, MAX_AUDIT_LINE_BYTES);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail('not a JSON object');
  const fields = value as Record<string, unknown>;
  const keys = Object.keys(fields).sort().join(',');
  if (keys !== FIELD_KEYS && keys !== BATCH_FIELD_KEYS) fail(`fields must be exactly ${FIELDS.join(', ')}, and batch_path for a record signed in a batch`);
  const batchPath = fields['batch_path'] ?? [];
  if (!isAuditPath(batchPath) || ('batch_path' in fields && batchPath.length === 0)) fail(`batch_path must be 1 to ${MAX_AUDIT_PATH_STEPS} steps, each L or R and 64 lowercase hex digits`);
  const text = (name: string): string => (typeof fields[name] === 'string' ? (fields[name] as string) : fail(`${name} must be a string`));
  const details = fields['details'];
  if (details === null || typeof details !== 'object' || Array.isArray(details)) fail('details must be an object');
  if (nestedDeeperThan(details, MAX_DETAILS_DEPTH)) fail(`details are nested deeper than ${MAX_DETAILS_DEPTH} levels`);
  const seq = fields['seq'];
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) fail('seq must be a whole number from 1');
  const agentId = fields['agent_id'];
  if (agentId !== null && typeof agentId !== 'string') fail('agent_id must be a string or null');
  const hash = text('hash');
  const prevHash = text('prev_hash');
  if (!HEX64.test(hash) || !HEX64.test(prevHash)) fail('hash and prev_hash must be 64 lowercase hex digits');
  return {
    stream: text('stream'),
    at: text('at'),
    actor: text('actor'),
    action: text('action'),
    agentId: agentId as string | null,
    details: details as Record<string, unknown>,
    seq: seq as number,
    prevHash,
    hash,
    signature: text('signature'),
    batchPath: batchPath as string[],
  };
}

/** True when `value` has arrays or objects nested more than `max` levels. Iterative: any depth is safe. */
function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 1 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (item.value === null || typeof item.value !== 'object') continue;
    if (item.depth > max) return true;
    for (const child of Object.values(item.value)) stack.push({ value: child, depth: item.depth + 1 });
  }
  return false;
}
