import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { limitCpu } from '../../bench/cpu-limit.js';
import { procStatCpuMs } from '../../bench/proc-stat-cpu.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether this machine lets the bench cap a process (root and a cgroup cpu controller). */
function canLimit(): boolean {
  return process.getuid?.() === 0 && (existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us') || existsSync('/sys/fs/cgroup/cgroup.subtree_control'));
}

/**
 * `--cpu-limit` of the verifier bench (`bench/cpu-limit.ts`): a process in the cap's cgroup gets no
 * more than its share of a core, and the cgroup is removed once the process has ended.
 */
describe('bench: a verifier process capped at a share of one core', function () {
  this.timeout(20_000);

  it('holds a busy process to its share and removes its cgroup after it exits', async function () {
    if (!canLimit()) this.skip();
    const busy = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => busy.once('exit', resolve));
    const pid = busy.pid as number;
    const name = `ironlime-test-${process.pid}`;
    const limit = await limitCpu(pid, 5, name);
    try {
      await sleep(500);
      const before = procStatCpuMs(`/proc/${pid}/stat`);
      await sleep(2_000);
      const share = (procStatCpuMs(`/proc/${pid}/stat`) - before) / 2_000;
      // Uncapped, a busy loop takes a core, or a large share of one on a loaded 2-core machine.
      expect(share, 'share of a core while capped at 5 %').to.be.below(0.15);
    } finally {
      busy.kill('SIGKILL');
      await exited;
      await limit.release();
    }
    expect(existsSync(`/sys/fs/cgroup/cpu/${name}`) || existsSync(`/sys/fs/cgroup/${name}`), 'cgroup removed').to.equal(false);
  });

  it('refuses a share that is not a positive per cent', async function () {
    for (const share of [0, -5, Number.NaN]) {
      let refused: unknown;
      await limitCpu(process.pid, share, 'ironlime-test-refused').catch((error: unknown) => (refused = error));
      expect(String(refused)).to.match(/is not a share of a core/);
    }
  });
});
