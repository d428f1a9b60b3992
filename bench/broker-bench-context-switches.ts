import { readdirSync, readFileSync } from 'node:fs';

/** Context switches of a set of processes, all their threads summed (`/proc/<pid>/task/<tid>/status`). */
export interface ContextSwitches {
  /** The thread blocked (waited for I/O, a lock, the event loop's next event). */
  readonly voluntary: number;
  /** The scheduler took the core away (another runnable process or thread). */
  readonly involuntary: number;
}

/**
 * Context switches of process `pid` and of its child processes (a `startBrokerCluster` primary's
 * workers), every thread included (libuv's thread pool runs the WebCrypto jobs jose starts). On a
 * system without `/proc` both are 0.
 */
export function contextSwitches(pid: number): ContextSwitches {
  let voluntary = 0;
  let involuntary = 0;
  for (const process of [pid, ...childPids(pid)]) {
    for (const tid of list(`/proc/${process}/task`)) {
      const status = read(`/proc/${process}/task/${tid}/status`);
      voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    }
  }
  return { voluntary, involuntary };
}

function childPids(pid: number): number[] {
  return list(`/proc/${pid}/task`).flatMap((tid) => read(`/proc/${pid}/task/${tid}/children`).split(' ').filter((text) => text !== '').map(Number));
}

function list(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
