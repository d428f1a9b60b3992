/**
 * A CPU quota on one process, through a cgroup of its own (`--cpu-limit` of `npm run bench -- verifier`).
 * On a 2-core machine that also runs the simulated fleet and PostgreSQL, one uncapped verifier process
 * never becomes the bottleneck (it held 3,000 agents at 40 % of a core: docs/fleet.md, "Where the
 * figures stand (2026-12-05, quiet machine)"), so `--verifiers 2` would compare two processes that both
 * keep up. Capping each verifier process at the same share of a core stands in for a machine whose
 * verifier is the limit: what one capped process attests per second is its capacity, and K capped
 * processes show how much of K× the leases deliver. Needs root and the `cpu` controller (cgroup v1, or
 * v2 with `cpu` enabled for the root's children).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';

export interface CpuLimit {
  /** Removes the cgroup; call once the process has exited (a cgroup with a live process cannot be removed). */
  release(): Promise<void>;
  /** CPU time the kernel held the process back for so far, in ms (`cpu.stat`): 0 means the cap never bit. */
  throttledMs(): number;
}

/**
 * A short period keeps the throttling fine-grained: a capped process runs in slices of 10 ms periods,
 * not of the default 100 ms. The kernel refuses a quota under 1 ms and a period over 1 s, so a small cap
 * gets a longer period, and 0.1 % (1 ms a second) is the smallest cap.
 */
const PERIOD_US = 10_000;
const MIN_QUOTA_US = 1000;
const MIN_PERCENT = 0.1;
const V1_CPU = '/sys/fs/cgroup/cpu';
const V2_ROOT = '/sys/fs/cgroup';
/** Distinct cgroup names within one bench process, whatever was released before. */
let created = 0;

/**
 * Why `percentOfCore` cannot be capped here (out of range, no cpu controller, not root), or undefined:
 * the bench asks before it sets a fleet up, not after.
 */
export function cpuLimitProblem(percentOfCore: number, version = cgroupVersion()): string | undefined {
  const cores = availableParallelism();
  if (!(percentOfCore >= MIN_PERCENT && percentOfCore <= 100 * cores)) {
    return `--cpu-limit: ${percentOfCore} is not a share of a core in per cent (${MIN_PERCENT} to ${100 * cores} here)`;
  }
  if (process.getuid?.() !== 0) return '--cpu-limit: needs root (it writes to /sys/fs/cgroup)';
  if (version === undefined) {
    return '--cpu-limit: no cgroup cpu controller here (needs cgroup v1 cpu, or v2 with cpu in the root subtree_control)';
  }
  return undefined;
}

function cgroupVersion(): 1 | 2 | undefined {
  if (existsSync(path.join(V1_CPU, 'cpu.cfs_quota_us'))) return 1;
  const controllers = existsSync(path.join(V2_ROOT, 'cgroup.subtree_control')) ? readFileSync(path.join(V2_ROOT, 'cgroup.subtree_control'), 'utf8') : '';
  return controllers.split(/\s+/).includes('cpu') ? 2 : undefined;
}

/** Puts `pid` (all its threads) in a new cgroup, named after `prefix`, limited to `percentOfCore` % of one core. */
export async function limitCpu(pid: number, percentOfCore: number, prefix: string): Promise<CpuLimit> {
  const version = cgroupVersion();
  const problem = cpuLimitProblem(percentOfCore, version);
  if (problem !== undefined) throw new Error(problem);
  const periodUs = Math.max(PERIOD_US, Math.ceil((MIN_QUOTA_US * 100) / percentOfCore));
  const quotaUs = Math.round((periodUs * percentOfCore) / 100);
  const v1 = version === 1;
  created += 1;
  const dir = path.join(v1 ? V1_CPU : V2_ROOT, `${prefix}-${created}`);
  await mkdir(dir).catch((error: unknown) => {
    throw new Error(`--cpu-limit: could not make the cgroup ${dir} (${(error as Error).message})`);
  });
  try {
    if (v1) {
      await writeFile(path.join(dir, 'cpu.cfs_period_us'), String(periodUs));
      await writeFile(path.join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
    } else {
      await writeFile(path.join(dir, 'cpu.max'), `${quotaUs} ${periodUs}`);
    }
    // cgroup.procs moves the whole thread group (the event loop, libuv's pool, V8's helpers); threads
    // started later are born in it.
    await writeFile(path.join(dir, 'cgroup.procs'), String(pid));
  } catch (error) {
    await rmdir(dir).catch(() => undefined);
    throw new Error(`--cpu-limit: could not cap process ${pid} in ${dir} (${(error as Error).message})`);
  }
  return { release: () => removeWhenEmpty(dir), throttledMs: () => throttledMs(dir, v1) };
}

/** `cpu.stat`'s throttled time: v1 `throttled_time` in ns, v2 `throttled_usec` in µs. */
function throttledMs(dir: string, v1: boolean): number {
  const stat = readFileSync(path.join(dir, 'cpu.stat'), 'utf8');
  const field = v1 ? 'throttled_time' : 'throttled_usec';
  const value = Number(new RegExp(`^${field} (\\d+)$`, 'm').exec(stat)?.[1] ?? 0);
  return v1 ? value / 1e6 : value / 1e3;
}

/** The kernel empties a cgroup shortly after its last process is reaped: try for up to a second. */
async function removeWhenEmpty(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    try {
      await rmdir(dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  process.stderr.write(`--cpu-limit: ${dir} is still busy; remove it by hand (rmdir) once its process has ended\n`);
}
