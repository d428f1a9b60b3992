import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * A CPU quota on one process, through a cgroup of its own (`--cpu-limit` of `npm run bench -- verifier`).
 * On a 2-core machine that also runs the simulated fleet and PostgreSQL, one verifier process never
 * becomes the bottleneck (it holds 3,000 agents at 40 % of a core), so `--verifiers 2` would compare two
 * idle processes. Capping each verifier process at the same share of a core stands in for a machine
 * whose verifier is the limit: what one capped process attests per second is its capacity, and K capped
 * processes show how much of K× the leases deliver. Needs root and the `cpu` controller (cgroup v1, or
 * v2 with `cpu` enabled for the root's children).
 */
export interface CpuLimit {
  /** Removes the cgroup; call once the process has exited (a cgroup with a live process cannot be removed). */
  release(): Promise<void>;
}

/**
 * A short period keeps the throttling fine-grained: a capped process runs in slices of 10 ms periods,
 * not of the default 100 ms. The kernel refuses a quota under 1 ms, so a small cap gets a longer period.
 */
const PERIOD_US = 10_000;
const MIN_QUOTA_US = 1000;
const V1_CPU = '/sys/fs/cgroup/cpu';
const V2_ROOT = '/sys/fs/cgroup';

/** Puts `pid` (all its threads) in a new cgroup limited to `percentOfCore` % of one core. */
export async function limitCpu(pid: number, percentOfCore: number, name: string): Promise<CpuLimit> {
  if (!(percentOfCore > 0 && percentOfCore <= 100 * 64)) {
    throw new Error(`--cpu-limit: ${percentOfCore} is not a share of a core in per cent`);
  }
  const periodUs = Math.max(PERIOD_US, Math.ceil((MIN_QUOTA_US * 100) / percentOfCore));
  const quotaUs = Math.round((periodUs * percentOfCore) / 100);
  const v1 = existsSync(path.join(V1_CPU, 'cpu.cfs_quota_us'));
  const root = v1 ? V1_CPU : V2_ROOT;
  if (!v1 && !(await readFile(path.join(V2_ROOT, 'cgroup.subtree_control'), 'utf8').catch(() => '')).split(/\s+/).includes('cpu')) {
    throw new Error('--cpu-limit: no cgroup cpu controller is available here (needs cgroup v1 cpu, or v2 with cpu in the root subtree_control)');
  }
  const dir = path.join(root, name);
  try {
    await mkdir(dir);
    if (v1) {
      await writeFile(path.join(dir, 'cpu.cfs_period_us'), String(periodUs));
      await writeFile(path.join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
    } else {
      await writeFile(path.join(dir, 'cpu.max'), `${quotaUs} ${periodUs}`);
    }
    // cgroup.procs moves the whole thread group: the event loop, libuv's pool and V8's helpers alike.
    await writeFile(path.join(dir, 'cgroup.procs'), String(pid));
  } catch (error) {
    await rmdir(dir).catch(() => undefined);
    throw new Error(`--cpu-limit: could not cap process ${pid} in ${dir} (${(error as Error).message}); it needs root`);
  }
  return { release: () => removeWhenEmpty(dir) };
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
