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
  let lastWall = performance.now();
  let lastCpu = process.cpuUsage();
  let worst = 0;
  const take = (): void => {
    const wall = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    worst = Math.max(worst, Math.min(wall - lastWall, (cpu.user + cpu.system) / 1000));
    lastWall = wall;
    lastCpu = process.cpuUsage();
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
