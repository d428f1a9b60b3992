import { readFile } from 'node:fs/promises';
import type { Knex } from 'knex';

/** Linux reports process CPU in USER_HZ ticks, 100 per second on every architecture it runs on. */
const USER_HZ = 100;

/**
 * CPU time (ms, by pid) of the PostgreSQL backends serving the connections whose `application_name`
 * is `applicationName`, read from `/proc/<pid>/stat` (utime + stime, fields 14 and 15): the bench's
 * PostgreSQL runs on this host. A backend that is gone or unreadable is left out; on a system without
 * `/proc` the map is empty and the bench prints no PostgreSQL figure.
 */
export async function postgresBackendCpu(knex: Knex, applicationName: string): Promise<Map<number, number>> {
  const result = (await knex.raw('select pid from pg_stat_activity where application_name = ?', [applicationName])) as { rows: { pid: number }[] };
  const cpu = new Map<number, number>();
  for (const { pid } of result.rows) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      // Fields after the parenthesised command name (which may hold spaces): state is field 3.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpu.set(pid, ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ);
    } catch {
      continue;
    }
  }
  return cpu;
}

/** CPU ms the backends used between two readings; a backend that appeared in between counts from zero. */
export function postgresCpuBetween(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) {
    total += ms - (before.get(pid) ?? 0);
  }
  return total;
}
