/**
 * The CPU time (user and system, ms) this process spent while `run` ran, and what it returned. For bounds
 * on synchronous work: unlike the wall clock, it does not count the time a busy CI host kept the process
 * off the CPU (seen stalling it for seconds), so a bound on it fails only for work that really took long.
 */
export function cpuTimed<T>(run: () => T): { readonly value: T; readonly ms: number } {
  const before = process.cpuUsage();
  const value = run();
  const spent = process.cpuUsage(before);
  return { value, ms: (spent.user + spent.system) / 1000 };
}
