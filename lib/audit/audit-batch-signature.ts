import { hash, sign, verify, type KeyObject } from 'node:crypto';

/** Most steps a record's path may have: a batch of 2^64 records is far beyond any transaction. */
export const MAX_AUDIT_PATH_STEPS = 64;
/** One step of a path: the side the sibling is on (`L`, `R`) and its hash. */
const PATH_STEP = /^[LR][0-9a-f]{64}$/;
/** Inner nodes are hashed as 0x01 ‖ left ‖ right (RFC 6962 §2.1's interior prefix). */
const INNER_NODE = Buffer.from([1]);

/** What signing a batch gives each record: the batch's signature and the record's path to the signed root. */
export interface AuditBatchSeal {
  /** Ed25519 over the root's 32 bytes, base64 (over the record's own hash when the batch has one record). */
  readonly signature: string;
  /** Per record, in the order given: the sibling hashes from its hash up to the root. */
  readonly paths: readonly (readonly string[])[];
}

/**
 * Signs a batch of audit record hashes with ONE Ed25519 signature. The hashes are the leaves of a
 * binary hash tree, RFC 6962 §2.1's shape: an inner node is SHA-256(0x01 ‖ left ‖ right), and an odd
 * node at the end of a level moves up unchanged. The key signs the root, and each record keeps the
 * signature and its path, so one record still verifies on its own (`auditSignatureValid`).
 *
 * A leaf is the record hash itself, not RFC 6962's SHA-256(0x00 ‖ leaf): that hash is SHA-256 over
 * canonical JSON, which starts with `{` (0x7b), never with 0x01, so a record can no more pass for an
 * inner node than an inner node for a record. A batch of one is signed as before batches existed: over
 * the record's hash, with an empty path, which keeps every earlier record and export valid.
 */
export function signAuditBatch(hashes: readonly string[], key: KeyObject): AuditBatchSeal {
  let level: Buffer[] = hashes.map((hash) => Buffer.from(hash, 'hex'));
  const paths: string[][] = hashes.map(() => []);
  // positions[i]: where record i's subtree is in the current level.
  let positions = hashes.map((_, index) => index);
  while (level.length > 1) {
    const next: Buffer[] = [];
    // A sibling's hex is shared by every record of the subtree beside it: written once per level.
    const hexes: (string | undefined)[] = [];
    for (let index = 0; index + 1 < level.length; index += 2) {
      next.push(innerNode(level[index] as Buffer, level[index + 1] as Buffer));
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1] as Buffer);
    positions = positions.map((position, record) => {
      const sibling = position % 2 === 0 ? position + 1 : position - 1;
      if (sibling < level.length) {
        const hex = (hexes[sibling] ??= (level[sibling] as Buffer).toString('hex'));
        (paths[record] as string[]).push(`${position % 2 === 0 ? 'R' : 'L'}${hex}`);
      }
      return position >> 1;
    });
    level = next;
  }
  const root = level[0];
  return { signature: root === undefined ? '' : sign(null, root, key).toString('base64'), paths };
}

/**
 * True when `signature` is the audit key's signature over the root that `hash` and `path` lead to.
 * A path that is not a list of steps (`L`/`R` and 64 hex digits), or is too long, is false.
 */
export function auditSignatureValid(hash: string, path: readonly string[], signature: string, publicKey: KeyObject): boolean {
  if (!isAuditPath(path)) return false;
  let node: Buffer = Buffer.from(hash, 'hex');
  for (const step of path) {
    const sibling = Buffer.from(step.slice(1), 'hex');
    node = step[0] === 'L' ? innerNode(sibling, node) : innerNode(node, sibling);
  }
  try {
    return verify(null, node, publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** A record's `batch_path` as stored and exported: at most `MAX_AUDIT_PATH_STEPS` steps of `L`/`R` and 64 hex digits. */
export function isAuditPath(path: unknown): path is string[] {
  return Array.isArray(path) && path.length <= MAX_AUDIT_PATH_STEPS && path.every((step) => typeof step === 'string' && PATH_STEP.test(step));
}

function innerNode(left: Buffer, right: Buffer): Buffer {
  return hash('sha256', Buffer.concat([INNER_NODE, left, right]), 'buffer');
}
