import { randomInt } from 'node:crypto';

/**
 * The first key of every verifier process lock, `pg_try_advisory_lock(PROCESS_LOCK_CLASS, key)`:
 * "irlv" in ASCII. The two-int4 key space does not overlap the one-bigint space the registrar's
 * `pg_advisory_xact_lock(hashtext(…))` uses (PostgreSQL docs, "Advisory Lock Functions").
 */
export const PROCESS_LOCK_CLASS = 0x69726c76;

/**
 * How long a beat keeps a process from being judged dead by its lock. Every process with a lock beats
 * at least every half second (`watchPeriodMs`), so a live process whose lock connection merely dropped
 * beats again (without a key) well within it; a SIGKILLed process stops beating and is dead one grace
 * after its last beat.
 */
export const BEAT_GRACE_MS = 1000;

/** A process's second key: 1 to 2³¹ − 1, so it casts to `oid` (pg_locks.objid) as the same number. */
export function randomLockKey(): number {
  return randomInt(1, 2 ** 31);
}

/**
 * SQL true while some session of this database holds the process lock of key `keySql` (an int4
 * expression). pg_locks shows a two-int4 advisory lock with the first key in `classid`, the second
 * in `objid` and 2 in `objsubid` (1 is the one-bigint form); advisory locks are per database, and
 * the view lists every database's.
 */
export function lockHeldSql(keySql: string): string {
  return `exists (select 1 from pg_locks l
    where l.locktype = 'advisory' and l.classid = ${PROCESS_LOCK_CLASS}::oid and l.objid = (${keySql})::oid and l.objsubid = 2
      and l.granted and l.database = (select d.oid from pg_database d where d.datname = current_database()))`;
}

/**
 * SQL true for a `verifier_processes` row (alias `p`) whose process is dead by its lock. All of:
 * - it wrote a lock key and nobody holds that lock: PostgreSQL releases a session's advisory locks as
 *   soon as its connection closes, which the OS does for a process that is SIGKILLed or crashes;
 * - the row was written on the server instance running now (`lock_instance`): a restart or a
 *   failover ends every lock at once, and a row from before it says nothing about its process;
 * - its beat is older than `BEAT_GRACE_MS`: a live process whose lock connection dropped keeps
 *   beating through the pool while it takes its lock again.
 * A row without a key (PGlite, a pooler, a process whose lock connection is down) is never dead by
 * this test: the heartbeat and the leases judge it.
 */
export function deadByLockSql(p: string): string {
  return `(${p}.lock_key is not null and ${p}.lock_instance = pg_postmaster_start_time()
    and ${p}.heartbeat_at < now() - make_interval(secs => ${BEAT_GRACE_MS / 1000})
    and not ${lockHeldSql(`${p}.lock_key`)})`;
}

/**
 * SQL true for a row (alias `p`) that the process holding the lock `judgeKey` judges dead by its lock
 * (`deadByLockSql`). A process judges only while it holds its own lock (checked in the same statement;
 * `judgeKey` null: it judges nobody): one whose lock is gone may be the one cut off, and after an outage
 * that ended every session, the others' rows are no younger than its own.
 */
export function judgedDeadSql(p: string, judgeKey: number | null): string {
  if (judgeKey === null) {
    return 'false';
  }
  if (!Number.isSafeInteger(judgeKey)) {
    throw new TypeError(`a process lock key is an integer, not ${judgeKey}`);
  }
  return `(${lockHeldSql(String(judgeKey))} and ${deadByLockSql(p)})`;
}
