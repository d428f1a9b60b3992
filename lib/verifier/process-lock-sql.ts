import { randomInt } from 'node:crypto';

/**
 * The first key of every verifier process lock, `pg_try_advisory_lock(PROCESS_LOCK_CLASS, key)`:
 * "irlv" in ASCII. The two-int4 key space does not overlap the one-bigint space the registrar's
 * `pg_advisory_xact_lock(hashtext(…))` uses (PostgreSQL docs, "Advisory Lock Functions").
 */
export const PROCESS_LOCK_CLASS = 0x69726c76;

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
 * SQL true for a `verifier_processes` row (alias `p`) whose process is dead: it wrote a lock key and
 * nobody holds that lock any more. PostgreSQL releases a session's advisory locks as soon as its
 * connection closes, which the OS does for a process that is SIGKILLed or crashes. A row without a key
 * (PGlite, or a process whose lock connection is down) is never dead by this test: the heartbeat and
 * the leases judge it.
 */
export function deadByLockSql(p: string): string {
  return `(${p}.lock_key is not null and not ${lockHeldSql(`${p}.lock_key`)})`;
}
