import type { KeyObject } from 'node:crypto';
import { auditSignatureValid } from './audit-batch-signature.js';
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
  | 'stream-mismatch';

export interface AuditChainBreak {
  /** 0-based position in the list that was checked (the line number of an export, minus one). */
  readonly index: number;
  readonly seq: number;
  readonly reason: AuditBreakReason;
  readonly message: string;
}

export interface AuditChainResult {
  readonly valid: boolean;
  /** Records checked before the first break (all of them when valid). */
  readonly checked: number;
  readonly break?: AuditChainBreak;
}

/**
 * Checks one stream's records in order: each record's hash matches its content, is signed by the
 * audit key (alone, or as a leaf of its batch's signed tree: `auditSignatureValid`) and links to the record before it, with consecutive `seq`. A list that starts at seq 1
 * must start from the genesis hash; a list exported with `--since` starts later, and its first
 * record's link is taken as given (there is nothing before it to compare with).
 */
export function verifyAuditChain(records: readonly AuditRecord[], publicKey: KeyObject): AuditChainResult {
  for (let index = 0; index < records.length; index += 1) {
    const record = records[index] as AuditRecord;
    const previous = index === 0 ? undefined : (records[index - 1] as AuditRecord);
    const fail = (reason: AuditBreakReason, message: string): AuditChainResult => ({
      valid: false,
      checked: index,
      break: { index, seq: record.seq, reason, message: `record ${index + 1} (seq ${record.seq}): ${message}` },
    });
    if (auditRecordHash(record, record.seq, record.prevHash) !== record.hash) {
      return fail('hash-mismatch', 'its content does not match its hash: it was edited');
    }
    if (!auditSignatureValid(record.hash, record.batchPath, record.signature, publicKey)) {
      return fail('bad-signature', 'its hash (alone or through its batch path) is not signed by the audit key');
    }
    if (previous === undefined) {
      if (record.seq === 1 && record.prevHash !== AUDIT_GENESIS_HASH) {
        return fail('broken-link', 'the first record of the stream does not start from the genesis hash');
      }
      continue;
    }
    if (record.stream !== previous.stream) {
      return fail('stream-mismatch', `stream ${record.stream} follows stream ${previous.stream}`);
    }
    if (record.seq !== previous.seq + 1) {
      return fail('sequence-gap', `expected seq ${previous.seq + 1}: a record was deleted or moved`);
    }
    if (record.prevHash !== previous.hash) {
      return fail('broken-link', 'it does not link to the record before it: a record was deleted, inserted or moved');
    }
  }
  return { valid: true, checked: records.length };
}
