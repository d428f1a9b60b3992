import { sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../bytes/canonical-json.js';

/** The format tag inside a checkpoint's signed bytes: they can be taken for no record's nor manifest's. */
export const AUDIT_CHECKPOINT_FORMAT = 'ironlime-audit-checkpoint/1';
/** How a checkpoint line of an export starts (canonical JSON: `checkpoint` sorts before `signature`). */
export const CHECKPOINT_LINE_START = '{"checkpoint":';

/**
 * A run of a stream's records that retention deleted (`AuditPruner`), seq `fromSeq` to `toSeq`,
 * signed by the audit key when it was deleted: it links `prevHash` (the hash the run's first record
 * linked to: the record before it, or the genesis hash from seq 1) to `hash` (the run's last record's
 * hash, to which the next record kept links). In a chain it takes the place of the records it stands for.
 */
export interface AuditCheckpoint {
  readonly stream: string;
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly prevHash: string;
  readonly hash: string;
  /** When the run (its last part) was deleted, ISO 8601 UTC. */
  readonly at: string;
}

export interface SignedAuditCheckpoint extends AuditCheckpoint {
  /** Ed25519 by the audit key over `auditCheckpointBody`, base64. */
  readonly signature: string;
}

/**
 * The bytes a checkpoint's signature covers: its canonical JSON with the format tag. Never 32 bytes
 * long (a record's signature is over a 32-byte hash or batch root), and a manifest's tag differs.
 */
export function auditCheckpointBody(checkpoint: AuditCheckpoint): string {
  return canonicalJson({
    format: AUDIT_CHECKPOINT_FORMAT,
    stream: checkpoint.stream,
    from_seq: checkpoint.fromSeq,
    to_seq: checkpoint.toSeq,
    prev_hash: checkpoint.prevHash,
    hash: checkpoint.hash,
    at: checkpoint.at,
  });
}

export function signAuditCheckpoint(checkpoint: AuditCheckpoint, key: KeyObject): SignedAuditCheckpoint {
  return { ...checkpoint, signature: sign(null, Buffer.from(auditCheckpointBody(checkpoint)), key).toString('base64') };
}

export function auditCheckpointSigned(checkpoint: SignedAuditCheckpoint, publicKey: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(auditCheckpointBody(checkpoint)), publicKey, Buffer.from(checkpoint.signature, 'base64'));
  } catch {
    return false;
  }
}

/** The checkpoint line of an export, canonical: `{"checkpoint":{…},"signature":…}`. */
export function formatAuditCheckpointLine(checkpoint: SignedAuditCheckpoint): string {
  return `${canonicalJson({
    checkpoint: { stream: checkpoint.stream, from_seq: checkpoint.fromSeq, to_seq: checkpoint.toSeq, prev_hash: checkpoint.prevHash, hash: checkpoint.hash, at: checkpoint.at },
    signature: checkpoint.signature,
  })}\n`;
}
