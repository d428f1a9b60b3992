import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { expect } from 'chai';
import { cpuLimitProblem, limitCpu, type CpuLimit } from '../../bench/cpu-limit.js';
import { procStatCpuMs } from '../../bench/proc-stat-cpu.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The cgroups this test process made, wherever the machine keeps them. */
function ownCgroups(prefix: string): string[] {
  return ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup'].flatMap((dir) => {
    try {
      return readdirSync(dir).filter((name) => name.startsWith(prefix));
    } catch {
      return [];
    }
  });
}

/**
 * `--cpu-limit` of the verifier bench (`bench/cpu-limit.ts`): a process in the cap's cgroup gets no
 * more than its share of a core, the kernel reports the time it held it back, and the cgroup is
 * removed once the process has ended.
 */
describe('bench: a verifier process capped at a share of one core', function () {
  this.timeout(20_000);

  it('holds a busy process to its share, reports it throttled, and removes its cgroup after it exits', async function () {
    if (cpuLimitProblem(5) !== undefined) this.skip();
    const prefix = `ironlime-test-${process.pid}`;
    const busy = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => busy.once('exit', resolve));
    const pid = busy.pid as number;
    let limit: CpuLimit | undefined;
    try {
      limit = await limitCpu(pid, 5, prefix);
      await sleep(500);
      const before = procStatCpuMs(`/proc/${pid}/stat`);
      const throttledBefore = limit.throttledMs();
      const from = Date.now();
      await sleep(2_000);
      const share = (procStatCpuMs(`/proc/${pid}/stat`) - before) / (Date.now() - from);
      // Uncapped, a busy loop takes a core, or a large share of one on a loaded 2-core machine.
      expect(share, 'share of a core while capped at 5 %').to.be.below(0.15);
      expect(limit.throttledMs() - throttledBefore, 'ms the kernel held it back in 2 s').to.be.above(1_000);
    } finally {
      busy.kill('SIGKILL');
      await exited;
      await limit?.release();
    }
    expect(ownCgroups(prefix), 'cgroup removed').to.deep.equal([]);
  });

  it('refuses a share that is not a per cent of the cores here, before touching any cgroup', async function () {
    for (const share of [0, 0.05, -5, Number.NaN, 100 * 1024]) {
      expect(cpuLimitProblem(share)).to.match(/is not a share of a core/);
      let refused: unknown;
      await limitCpu(-1, share, 'ironlime-test-refused').catch((error: unknown) => (refused = error));
      expect(String(refused)).to.match(/is not a share of a core/);
    }
    expect(ownCgroups('ironlime-test-refused')).to.deep.equal([]);
  });
});
