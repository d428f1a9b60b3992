import type { Knex } from 'knex';
import { pollUntil } from '../../lib/timing/poll-until.js';

/**
 * The PostgreSQL backend id of the connection `trx` runs on, whose locks `waitForLockWaiters` watches.
 */
export async function backendPid(trx: Knex.Transaction): Promise<number> {
  const result = (await trx.raw('select pg_backend_pid() as pid')) as { rows: { pid: number }[] };
  return result.rows[0]?.pid as number;
}

/**
 * Resolves once `count` statements wait for a lock that backend `holder` holds, directly or behind
 * another waiter (a row's second writer queues behind its first): a test that holds a row lock knows
 * then that the statements it started have reached it, in the order it started them.
 */
export async function waitForLockWaiters(knex: Knex, holder: number, count: number): Promise<void> {
  await pollUntil({ timeoutMs: 20_000, intervalMs: 20 }, `${count} statement(s) waiting for a lock of backend ${holder}`, async () => {
    const result = (await knex.raw(
      `with recursive waiting(pid) as (
         select pid from pg_stat_activity where ?::int = any(pg_blocking_pids(pid))
         union
         select a.pid from pg_stat_activity a join waiting w on w.pid = any(pg_blocking_pids(a.pid))
       )
       select count(*)::int as n from waiting`,
      [holder],
    )) as { rows: { n: number }[] };
    return (result.rows[0]?.n ?? 0) >= count;
  });
}
