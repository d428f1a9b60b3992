import type { KeyObject } from 'node:crypto';
import { auditSignatureValid } from './audit-batch-signature.js';
import { auditCheckpointSigned, type SignedAuditCheckpoint } from './audit-checkpoint.js';
import { AUDIT_GENESIS_HASH, auditRecordHash, type AuditRecord } from './audit-record.js';

/** Why a chain does not hold, at the first record where it breaks. */
export type AuditBreakReason =
  /** The record's content does not give its hash: it was edited. */
  | 'hash-mismatch'
  /** The hash, or the batch root its path leads to, is not signed by the audit key: forged, re-hashed or a path altered. */
  | 'bad-signature'
  /** `prevHash` is not the previous record's hash: a record was deleted, inserted or moved. */
  | 'broken-link'
  /** `seq` does not follow the previous one: a record was deleted or the order changed. */
  | 'sequence-gap'
  /** The stream changed inside one chain. */
  | 'stream-mismatch'
  /** A checkpoint (records deleted by retention) not signed by the audit key: forged or edited. */
  | 'bad-checkpoint'
  /** The records start later or end earlier than the export's signed manifest says: some were removed. */
  | 'truncated'
  /** A stream the signed manifest lists has no record in the export: it was removed. */
  | 'missing-stream'
  /** A stream the signed manifest does not list: added to the export. */
  | 'unlisted-stream'
  /** When exported, the database's head row of the stream did not name its last record: records were deleted or inserted. */
  | 'head-mismatch';

export interface AuditChainBreak {
  /** 0-based position in the list that was checked (the line number of an export, minus one). */
  readonly index: number;
  readonly seq: number;
  readonly reason: AuditBreakReason;
  readonly message: string;
}

/** Where the export's signed manifest says a stream's records start and end. */
export interface AuditChainEnds {
  readonly fromSeq: number;
  readonly lastSeq: number;
  readonly lastHash: string;
}

export interface AuditChainResult {
  readonly valid: boolean;
  /** Records checked before the first break (all of them when valid). */
  readonly checked: number;
  readonly break?: AuditChainBreak;
}

/** What a chain check keeps of a record once checked: enough to link the next one and to check the ends. */
interface CheckedRecord {
  readonly stream: string;
  readonly seq: number;
  readonly hash: string;
  /** True for a checkpoint: the seq and hash are its last deleted record's. */
  readonly checkpoint?: true;
}

/**
 * Checks one stream's records one at a time, in order: each record's hash matches its content, is
 * signed by the audit key (alone, or as a leaf of its batch's signed tree: `auditSignatureValid`) and
 * links to the record before it, with consecutive `seq`. A list that starts at seq 1 must start from
 * the genesis hash; a list exported with `--since` starts later, and its first record's link is taken
 * as given (there is nothing before it to compare with). It keeps the first and the last record's seq
 * and hash, never the records: a stream of any length is checked in constant memory.
 *
 * With `ends` (from a signed manifest) the records must also start at `fromSeq` and end with the
 * record `lastSeq`/`lastHash`: records removed from either end are found (`truncated`).
 *
 * A signed checkpoint (`addCheckpoint`) takes the place of the records retention deleted: it must
 * follow the record before them (or start the stream from seq 1 and the genesis hash), and the next
 * record must link to it. So a pruned stream verifies from seq 1, and records deleted without one do not.
 */
export class AuditChainCheck {
  private count = 0;
  private first: CheckedRecord | undefined;
  private previous: CheckedRecord | undefined;
  private broken: AuditChainResult | undefined;

  constructor(private readonly publicKey: KeyObject) {}

  /** Checks the next record; false once the chain has broken (later records are not checked). */
  add(record: AuditRecord): boolean {
    if (this.broken !== undefined) return false;
    const index = this.count;
    const fail = (reason: AuditBreakReason, message: string): boolean => {
      this.broken = { valid: false, checked: index, break: { index, seq: record.seq, reason, message: `record ${index + 1} (seq ${record.seq}): ${message}` } };
      return false;
    };
    if (auditRecordHash(record, record.seq, record.prevHash) !== record.hash) {
      return fail('hash-mismatch', 'its content does not match its hash: it was edited');
    }
    if (!auditSignatureValid(record.hash, record.batchPath, record.signature, this.publicKey)) {
      return fail('bad-signature', 'its hash (alone or through its batch path) is not signed by the audit key');
    }
    const previous = this.previous;
    if (previous === undefined) {
      if (record.seq === 1 && record.prevHash !== AUDIT_GENESIS_HASH) {
        return fail('broken-link', 'the first record of the stream does not start from the genesis hash');
      }
    } else if (record.stream !== previous.stream) {
      return fail('stream-mismatch', `stream ${record.stream} follows stream ${previous.stream}`);
    } else if (record.seq !== previous.seq + 1) {
      return fail('sequence-gap', `expected seq ${previous.seq + 1}: a record was deleted or moved, and no signed checkpoint stands for it`);
    } else if (record.prevHash !== previous.hash) {
      const before = previous.checkpoint === true ? "the checkpoint before it (its last deleted record's hash)" : 'the record before it';
      return fail('broken-link', `it does not link to ${before}: a record was deleted, inserted or moved`);
    }
    return this.link({ stream: record.stream, seq: record.seq, hash: record.hash }, record.seq);
  }

  /**
   * Checks a checkpoint in the place of the records it stands for: signed by the audit key, for this
   * stream, right after the record before them (or, first, from seq 1 and the genesis hash; in a
   * `--since` export a first one from later is taken as given, as a first record is); false once broken.
   */
  addCheckpoint(checkpoint: SignedAuditCheckpoint): boolean {
    if (this.broken !== undefined) return false;
    const index = this.count;
    const fail = (reason: AuditBreakReason, message: string): boolean => {
      this.broken = { valid: false, checked: index, break: { index, seq: checkpoint.fromSeq, reason, message: `item ${index + 1}, checkpoint of seq ${checkpoint.fromSeq} to ${checkpoint.toSeq}: ${message}` } };
      return false;
    };
    if (!auditCheckpointSigned(checkpoint, this.publicKey)) return fail('bad-checkpoint', 'not signed by the audit key for this stream: forged, edited or from another stream');
    const previous = this.previous;
    if (previous === undefined) {
      if (checkpoint.fromSeq === 1 && checkpoint.prevHash !== AUDIT_GENESIS_HASH) return fail('broken-link', 'it starts the stream but not from the genesis hash');
    } else if (checkpoint.stream !== previous.stream) {
      return fail('stream-mismatch', `stream ${checkpoint.stream} follows stream ${previous.stream}`);
    } else if (checkpoint.fromSeq !== previous.seq + 1) {
      return fail('sequence-gap', `expected seq ${previous.seq + 1}: a record was deleted or moved`);
    } else if (checkpoint.prevHash !== previous.hash) {
      return fail('broken-link', 'it does not link to the record before it: that record was edited, or the checkpoint is not for this place');
    }
    return this.link({ stream: checkpoint.stream, seq: checkpoint.toSeq, hash: checkpoint.hash, checkpoint: true }, checkpoint.fromSeq);
  }

  private link(checked: CheckedRecord, firstSeq: number): true {
    this.previous = checked;
    this.first ??= { stream: checked.stream, seq: firstSeq, hash: checked.hash };
    this.count += 1;
    return true;
  }

  /** The chain's result: its first break, else, with `ends`, whether it starts and ends where they say. */
  result(ends?: AuditChainEnds): AuditChainResult {
    if (this.broken !== undefined) return this.broken;
    return ends === undefined ? { valid: true, checked: this.count } : this.checkEnds(ends);
  }

  private checkEnds(ends: AuditChainEnds): AuditChainResult {
    const { first, previous: last, count } = this;
    const truncated = (index: number, seq: number, message: string): AuditChainResult => ({
      valid: false,
      checked: count,
      break: { index, seq, reason: 'truncated', message: `record ${index + 1} (seq ${seq}): ${message}` },
    });
    if (first === undefined || last === undefined) {
      // Only a stream with no record at all may have none here: any export holds each stream's last record, so its end is checked.
      if (ends.lastSeq === 0) return { valid: true, checked: 0 };
      const message =
        ends.lastSeq < ends.fromSeq
          ? `no record, but the signed manifest ends the stream at seq ${ends.lastSeq} and an export holds at least that record: its end cannot be checked (an older --since export: export again)`
          : `no record, but the signed manifest lists seq ${ends.fromSeq} to ${ends.lastSeq}: the stream was removed`;
      return { valid: false, checked: 0, break: { index: 0, seq: ends.fromSeq, reason: 'missing-stream', message } };
    }
    if (first.seq !== ends.fromSeq) {
      return truncated(0, first.seq, `the signed manifest starts the stream at seq ${ends.fromSeq}: records before this one were removed, and no signed checkpoint stands for them`);
    }
    // Retention never deletes a stream's last record: a chain ending in a checkpoint lost its end.
    if (last.checkpoint === true || last.seq !== ends.lastSeq || last.hash !== ends.lastHash) {
      const why = last.seq < ends.lastSeq ? 'records after this one were removed' : 'this is not the record it ends with';
      return truncated(count - 1, last.seq, `the signed manifest ends the stream at seq ${ends.lastSeq}: ${why}`);
    }
    return { valid: true, checked: count };
  }
}

/** `AuditChainCheck` over a list of one stream's records, in order. */
export function verifyAuditChain(records: readonly AuditRecord[], publicKey: KeyObject, ends?: AuditChainEnds): AuditChainResult {
  const check = new AuditChainCheck(publicKey);
  for (const record of records) if (!check.add(record)) break;
  return check.result(ends);
}
