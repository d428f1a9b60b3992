import { readdirSync, readFileSync } from 'node:fs';
import { procStatCpuMs } from './proc-stat-cpu.js';

/** Counters of a set of processes, summed over all their threads (`/proc/<pid>/task/<tid>`). */
export interface ThreadCounters {
  /** Context switches where a thread blocked (waited for I/O, a lock, the event loop's next event). */
  readonly voluntary: number;
  /** Context switches where the scheduler took the core away (another runnable process or thread). */
  readonly involuntary: number;
  /** CPU ms of each process's main thread: its event loop (JavaScript, TLS, the synchronous part of every crypto call). */
  readonly mainThreadMs: number;
  /** CPU ms of every thread of the processes (`/proc/<pid>/stat`), main threads included. */
  readonly allThreadsMs: number;
}

/**
 * Counters of process `pid` and of its child processes (a `startBrokerCluster` primary's workers),
 * every thread included. The threads other than the main one are libuv's pool, which runs every
 * WebCrypto job jose starts (key generation, ECDH, digests, key wrap, AES-GCM, ECDSA), and V8's
 * platform threads (optimising compiler, concurrent GC): `allThreadsMs - mainThreadMs` is what they
 * cost, and a measured window that still compiles shows there. CPU in 10 ms ticks. On a system without
 * `/proc` every counter is 0.
 */
export function threadCounters(pid: number): ThreadCounters {
  let voluntary = 0;
  let involuntary = 0;
  let mainThreadMs = 0;
  let allThreadsMs = 0;
  for (const process of [pid, ...childPids(pid)]) {
    for (const tid of list(`/proc/${process}/task`)) {
      const status = read(`/proc/${process}/task/${tid}/status`);
      voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    }
    mainThreadMs += cpuMs(`/proc/${process}/task/${process}/stat`);
    allThreadsMs += cpuMs(`/proc/${process}/stat`);
  }
  return { voluntary, involuntary, mainThreadMs, allThreadsMs };
}

function childPids(pid: number): number[] {
  return list(`/proc/${pid}/task`).flatMap((tid) => read(`/proc/${pid}/task/${tid}/children`).split(' ').filter((text) => text !== '').map(Number));
}

/** A process that exited between the listing and the read counts 0. */
function cpuMs(path: string): number {
  try {
    return procStatCpuMs(path);
  } catch {
    return 0;
  }
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
