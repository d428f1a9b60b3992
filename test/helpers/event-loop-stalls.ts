import { readFileSync } from 'node:fs';

/** Ends a watch: the longest stall seen, in ms. */
export interface StallWatch {
  stop(): number;
}

/**
 * Watches how long this process's event loop goes without running a 10 ms timer (what a blocking body
 * costs every other request), counting a gap by the CPU time spent in it when that is less: a busy CI
 * host that keeps the process off the CPU for seconds makes such a gap too, though nothing blocked the loop.
 */
export function watchEventLoopStalls(): StallWatch {
  return watchStalls(processCpuMs);
}

/**
 * As `watchEventLoopStalls`, but a gap counts by the CPU time of the main thread alone when that is
 * less: work in worker threads (which `process.cpuUsage` counts) and time off the CPU on a busy host
 * do not make a stall; the event loop's own work does. The main thread's CPU is read in 10 ms ticks.
 */
export function watchMainThreadStalls(): StallWatch {
  return watchStalls(mainThreadCpuMs);
}

/** The longest gap between runs of a 10 ms timer, or the CPU time `cpuMs` counted in it when less. */
function watchStalls(cpuMs: () => number): StallWatch {
  let lastWall = performance.now();
  let lastCpu = cpuMs();
  let worst = 0;
  const take = (): void => {
    const wall = performance.now();
    const cpu = cpuMs();
    worst = Math.max(worst, Math.min(wall - lastWall, cpu - lastCpu));
    lastWall = wall;
    lastCpu = cpu;
  };
  const ticker = setInterval(take, 10);
  return {
    stop(): number {
      clearInterval(ticker);
      take();
      return worst;
    },
  };
}

/** CPU time of this process (all its threads) so far, in ms. */
function processCpuMs(): number {
  const used = process.cpuUsage();
  return (used.user + used.system) / 1000;
}

/** CPU time of this process's main thread so far, in ms (Linux: `/proc`, in clock ticks of 10 ms). */
function mainThreadCpuMs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'latin1');
  // Fields after the command name (in parentheses, which may hold blanks): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
