import type { Knex } from 'knex';

/** The server process id of the connection `trx` holds (a transaction's: the blocker `blockedOnALock` names). */
export async function backendPid(trx: Knex.Transaction): Promise<number> {
  const result = (await trx.raw('select pg_backend_pid() as pid')) as { rows: { pid: number }[] };
  const pid = result.rows[0]?.pid;
  if (pid === undefined) throw new Error('pg_backend_pid() returned no row');
  return pid;
}

/**
 * Waits (up to 2 s) until a statement of this database on `verifier_push_boot_logs` waits for a lock
 * that the transaction of backend `blockerPid` holds: a write queued behind that very transaction.
 * Other runs share the test server, so a backend waiting on some other lock does not count. Throws
 * when none does, so a write that does not wait fails the test.
 */
export async function blockedOnALock(knex: Knex, blockerPid: number): Promise<void> {
  for (let tries = 0; tries < 100; tries += 1) {
    const result = (await knex.raw(
      `select count(*)::int as n from pg_stat_activity
       where datname = current_database() and wait_event_type = 'Lock' and query like '%verifier_push_boot_logs%'
         and pg_blocking_pids(pid) @> array[?::int]`,
      [blockerPid],
    )) as { rows: { n: number }[] };
    if ((result.rows[0]?.n ?? 0) > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no write waited for a lock of backend ${blockerPid} within 2 s`);
}
