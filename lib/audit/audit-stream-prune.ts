import type { KeyObject } from 'node:crypto';
import type { Knex } from 'knex';
import { auditSignatureValid } from './audit-batch-signature.js';
import { auditCheckpointSigned, signAuditCheckpoint, type AuditCheckpoint, type SignedAuditCheckpoint } from './audit-checkpoint.js';
import { AUDIT_CHECKPOINTS_TABLE, auditCheckpointFromRow, auditCheckpointRow, type AuditCheckpointRow } from './audit-checkpoint-rows.js';
import { auditRecordFromRow, type AuditRecordRow } from './audit-record-pages.js';
import { AUDIT_GENESIS_HASH, auditRecordHash, type AuditRecord } from './audit-record.js';
import type { AuditSigningKey } from './audit-signing-key.js';
import { VERIFIER_AUDIT_TABLES } from './audit-tables.js';

const { records: RECORDS, heads: HEADS } = VERIFIER_AUDIT_TABLES;

/** What one call did to a stream. */
export interface StreamPruneResult {
  /** Records deleted. */
  readonly deleted: number;
  /** Set when the call stopped at its batch bound and more may be prunable: where the next call resumes (the last record read, kept). */
  readonly resumeAt?: number;
  /** Why nothing was deleted although the stream was looked at: another process prunes it, or its stored chain does not hold. */
  readonly skipped?: 'busy' | 'broken';
  readonly message?: string;
}

/**
 * A record retention may delete: a verdict that passed. Everything else is kept for ever: failed
 * verdicts, admin actions, liveness changes, prune summaries, and any action or outcome not known here.
 */
export function prunableAuditRecord(record: AuditRecord): boolean {
  return record.action === 'verdict' && record.details['outcome'] === 'pass';
}

/**
 * Deletes, in one transaction, up to `batch` of `stream`'s oldest records that retention may delete
 * (`prunableAuditRecord`) and whose `at` is before `cutoff`, and stores in their place one signed
 * checkpoint per run of consecutive deleted records (`AuditCheckpoint`); a run that continues the
 * stream's last checkpoint replaces it with one for both. The scan starts after the last checkpoint and
 * stops at the first record at or after the cutoff; a kept record splits runs, and stays. The stream's
 * head (its last record) is never deleted, so appending is unchanged, and neither is the last record read.
 *
 * `resumeAt` (from the call before, on the same stream) starts the scan there instead, so a long run of
 * kept records is passed over a batch at a time rather than read again from the last checkpoint.
 *
 * Before signing, the records read are checked to form the stored chain (each hash matches its content,
 * links to the one before, seqs consecutive, from the last checkpoint or the genesis hash) and each record
 * to be deleted, and the last checkpoint, to be signed by the audit key: a checkpoint is never signed over
 * a chain that does not hold, nor over a record or checkpoint the key did not sign, and such a stream is
 * left alone (`skipped: 'broken'`).
 * Several pruners on one database take a per-stream advisory lock and skip a stream another one holds,
 * without waiting (`skipped: 'busy'`); appenders take no part in it and are never held up.
 */
export async function pruneAuditStream(knex: Knex, key: AuditSigningKey, stream: string, cutoff: string, batch: number, resumeAt?: number): Promise<StreamPruneResult> {
  return knex.transaction(async (trx) => {
    const [lock] = (await trx.raw('select pg_try_advisory_xact_lock(hashtext(?)) as locked', [`ironlime-audit-prune:${stream}`])).rows as { locked: boolean }[];
    if (lock?.locked !== true) return { deleted: 0, skipped: 'busy' };
    const head = (await trx(HEADS).select('seq').where({ stream }).first()) as { seq: string | number } | undefined;
    if (head === undefined) return { deleted: 0 };
    const lastRow = (await trx(AUDIT_CHECKPOINTS_TABLE).select('*').where({ stream }).orderBy('to_seq', 'desc').first()) as AuditCheckpointRow | undefined;
    const last = lastRow === undefined ? undefined : auditCheckpointFromRow(lastRow);
    // A run continuing it is signed from its from_seq and prev_hash: one the key did not sign
    // (say, a row widened over a deleted failure) must not be carried on into a signed one.
    if (last !== undefined && !auditCheckpointSigned(last, key.publicKey)) {
      return { deleted: 0, skipped: 'broken', message: `its last checkpoint (seq ${last.fromSeq} to ${last.toSeq}) is not signed by the audit key` };
    }
    const afterLast = (last?.toSeq ?? 0) + 1;
    // Resuming past the last checkpoint, the scan starts one before: that record (kept) links the ones after it.
    const from = resumeAt === undefined ? afterLast : Math.max(resumeAt - 1, afterLast);
    const rows = (await trx<AuditRecordRow>(RECORDS)
      .select('*')
      .where({ stream })
      .andWhere('seq', '>=', from)
      .andWhere('seq', '<=', Number(head.seq))
      .orderBy('seq')
      .limit(batch + 1)) as AuditRecordRow[];
    const read = rows.map(auditRecordFromRow);
    const anchor = from === afterLast ? undefined : read[0];
    if (anchor !== undefined && anchor.seq !== from) return { deleted: 0, skipped: 'broken', message: `seq ${from} is missing` };
    const records = anchor === undefined ? read : read.slice(1);
    const broken = brokenLink(records, anchor ?? (last === undefined ? undefined : { seq: last.toSeq, hash: last.hash }));
    if (broken !== undefined) return { deleted: 0, skipped: 'broken', message: broken };
    const { runs, reachedCutoff } = prunableRuns(records, cutoff, last);
    const unsigned = unsignedInRuns(records, runs, key.publicKey);
    if (unsigned !== undefined) return { deleted: 0, skipped: 'broken', message: unsigned };
    const at = new Date().toISOString();
    let deleted = 0;
    for (const run of runs) {
      const checkpoint = signAuditCheckpoint({ ...run, at }, key.privateKey);
      if (last !== undefined && run.fromSeq === last.fromSeq) {
        await trx(AUDIT_CHECKPOINTS_TABLE).where({ stream, to_seq: last.toSeq }).delete();
      }
      await trx(AUDIT_CHECKPOINTS_TABLE).insert(auditCheckpointRow(checkpoint));
      const gone = (await trx(RECORDS).where({ stream }).andWhere('seq', '>=', run.firstDeleted).andWhere('seq', '<=', run.toSeq).delete().returning('seq')) as unknown[];
      // Read in this transaction under the stream's lock: anything else means the table changed under it.
      if (gone.length !== run.toSeq - run.firstDeleted + 1) throw new Error(`audit retention: stream ${stream} seq ${run.firstDeleted} to ${run.toSeq} changed while pruned`);
      deleted += gone.length;
    }
    const lastRead = read[read.length - 1];
    return rows.length > batch && !reachedCutoff && lastRead !== undefined ? { deleted, resumeAt: lastRead.seq } : { deleted };
  });
}

/** A run to delete, as its checkpoint will say, and its first record actually deleted now (later than `fromSeq` when it continues the last checkpoint). */
interface PruneRun extends Omit<AuditCheckpoint, 'at'> {
  readonly firstDeleted: number;
}

/**
 * The runs of consecutive prunable records before the cutoff, up to (not including) the first record
 * at or after it, the stream's head, and the last record read (each run's end must be linked by a
 * record read after it). A run right after `last` extends it.
 */
function prunableRuns(records: readonly AuditRecord[], cutoff: string, last: SignedAuditCheckpoint | undefined): { runs: PruneRun[]; reachedCutoff: boolean } {
  const runs: PruneRun[] = [];
  let reachedCutoff = false;
  let open: { fromSeq: number; prevHash: string; firstDeleted: number; toSeq: number; hash: string } | undefined;
  const close = (): void => {
    if (open !== undefined) runs.push({ stream: '', ...open });
    open = undefined;
  };
  // The last record read is never deleted: it is the head, or the record that shows the run before it is linked.
  for (const record of records.slice(0, -1)) {
    // JavaScript compares strings by UTF-16 code unit: ISO 8601 UTC times of one format in time order.
    if (record.at >= cutoff) {
      reachedCutoff = true;
      break;
    }
    if (!prunableAuditRecord(record)) {
      close();
      continue;
    }
    if (open === undefined) {
      const continues = last !== undefined && record.seq === last.toSeq + 1;
      open = continues
        ? { fromSeq: last.fromSeq, prevHash: last.prevHash, firstDeleted: record.seq, toSeq: record.seq, hash: record.hash }
        : { fromSeq: record.seq, prevHash: record.prevHash, firstDeleted: record.seq, toSeq: record.seq, hash: record.hash };
    } else {
      open.toSeq = record.seq;
      open.hash = record.hash;
    }
  }
  close();
  const stream = records[0]?.stream ?? '';
  return { runs: runs.map((run) => ({ ...run, stream })), reachedCutoff };
}

/** Why the records read do not form the stored chain after `before` (a record or the last checkpoint's end; else the genesis), or undefined when they do. */
function brokenLink(records: readonly AuditRecord[], before: { readonly seq: number; readonly hash: string } | undefined): string | undefined {
  let previous = before ?? { seq: 0, hash: AUDIT_GENESIS_HASH };
  for (const record of records) {
    if (record.seq !== previous.seq + 1) return `seq ${previous.seq + 1} is missing`;
    if (record.prevHash !== previous.hash) return `seq ${record.seq} does not link to the one before it`;
    if (auditRecordHash(record, record.seq, record.prevHash) !== record.hash) return `seq ${record.seq} does not match its hash`;
    previous = { seq: record.seq, hash: record.hash };
  }
  return undefined;
}

/**
 * Why a record to be deleted is not signed by the audit key, or undefined when each one is. Links and
 * hashes alone hold for a failure edited to a pass with every hash after it recomputed: a checkpoint
 * must not vouch for it. Only the records deleted are checked, so a run that deletes nothing costs no signature check.
 */
function unsignedInRuns(records: readonly AuditRecord[], runs: readonly PruneRun[], publicKey: KeyObject): string | undefined {
  const deleted = records.filter((record) => runs.some((run) => record.seq >= run.firstDeleted && record.seq <= run.toSeq));
  const unsigned = deleted.find((record) => !auditSignatureValid(record.hash, record.batchPath, record.signature, publicKey));
  return unsigned === undefined ? undefined : `seq ${unsigned.seq} is not signed by the audit key`;
}
