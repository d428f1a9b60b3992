import { exactObject, isSeq, MAX_AUDIT_LINE_BYTES, readAuditLineJson } from './audit-export-format.js';
import { CHECKPOINT_LINE_START, type SignedAuditCheckpoint } from './audit-checkpoint.js';

const HEX64 = /^[0-9a-f]{64}$/;
const OUTER_KEYS = ['checkpoint', 'signature'];
const CHECKPOINT_KEYS = ['at', 'from_seq', 'hash', 'prev_hash', 'stream', 'to_seq'];

/** True when `line` has a checkpoint line's start (a record line starts `{"action":`, the manifest `{"manifest":`). */
export function isCheckpointLine(line: string): boolean {
  return line.startsWith(CHECKPOINT_LINE_START);
}

/**
 * A checkpoint line of an export (`formatAuditCheckpointLine`): exactly its fields, of their types,
 * `from_seq` from 1 and `to_seq` not before it, else an AuditFormatError naming the line. Its
 * signature is checked with the chain (`AuditChainCheck.addCheckpoint`), not here.
 */
export function parseAuditCheckpointLine(line: string, lineNumber: number): SignedAuditCheckpoint {
  const { value, fail } = readAuditLineJson(line, lineNumber, MAX_AUDIT_LINE_BYTES, 'checkpoint');
  const outer = exactObject(value, OUTER_KEYS) ?? fail('must be an object with exactly checkpoint and signature');
  const body = exactObject(outer['checkpoint'], CHECKPOINT_KEYS) ?? fail('must have exactly stream, from_seq, to_seq, prev_hash, hash and at');
  const { stream, from_seq: fromSeq, to_seq: toSeq, prev_hash: prevHash, hash, at } = body;
  const signature = outer['signature'];
  if (typeof stream !== 'string' || typeof at !== 'string' || typeof signature !== 'string') fail('stream, at and signature must be strings');
  if (!isSeq(fromSeq, 1) || !isSeq(toSeq, 1) || toSeq < fromSeq) fail('from_seq and to_seq must be whole numbers from 1, to_seq not before from_seq');
  if (typeof prevHash !== 'string' || typeof hash !== 'string' || !HEX64.test(prevHash) || !HEX64.test(hash)) fail('prev_hash and hash must be 64 lowercase hex digits');
  return { stream: stream as string, fromSeq: fromSeq as number, toSeq: toSeq as number, prevHash: prevHash as string, hash: hash as string, at: at as string, signature: signature as string };
}
