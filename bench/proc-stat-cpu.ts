import { readFileSync } from 'node:fs';

/** Linux reports process CPU in USER_HZ ticks, 100 per second on every architecture it runs on. */
const USER_HZ = 100;

/**
 * CPU time in ms (utime + stime, fields 14 and 15) of the process or thread whose stat file is `path`
 * (`/proc/<pid>/stat`, `/proc/self/task/<tid>/stat`). The fields are counted after the parenthesised
 * command name, which may itself hold spaces and parentheses. Throws when the file cannot be read.
 */
export function procStatCpuMs(path: string): number {
  const stat = readFileSync(path, 'utf8');
  // Fields after the command name start at the process state, field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
}
