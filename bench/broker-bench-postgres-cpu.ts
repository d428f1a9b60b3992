import type { Knex } from 'knex';
import { procStatCpuMs } from './proc-stat-cpu.js';

/**
 * CPU time (ms, by pid) of the PostgreSQL backends serving the connections whose `application_name`
 * is `applicationName`, read from `/proc/<pid>/stat` (`procStatCpuMs`): the bench's
 * PostgreSQL runs on this host. A backend that is gone or unreadable is left out; on a system without
 * `/proc` the map is empty and the bench prints no PostgreSQL figure.
 */
export async function postgresBackendCpu(knex: Knex, applicationName: string): Promise<Map<number, number>> {
  const result = (await knex.raw('select pid from pg_stat_activity where application_name = ?', [applicationName])) as { rows: { pid: number }[] };
  const cpu = new Map<number, number>();
  for (const { pid } of result.rows) {
    try {
      cpu.set(pid, procStatCpuMs(`/proc/${pid}/stat`));
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
