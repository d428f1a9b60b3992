import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { BOOT_TIME_FILE, hostBootTime } from '../../lib/agent/push/host-boot-time.js';

/**
 * The push agent's boot time stays the one it first sent while the kernel's boot id is unchanged:
 * the kernel's `btime` moves with every step of the wall clock, and the verifier refuses a boot time
 * earlier than the stored one (lib/attestation/push-decision.ts) — an agent restarted after NTP
 * stepped the clock back would be refused until the next reboot.
 */
describe('push agent: host boot time kept per boot id', function () {
  let dir: string;
  let sources: { procStat: string; bootIdFile: string };

  async function kernel(btimeSeconds: number, bootId: string): Promise<void> {
    await writeFile(sources.procStat, `cpu  1 2 3\nbtime ${btimeSeconds}\nprocesses 9\n`);
    await writeFile(sources.bootIdFile, `${bootId}\n`);
  }

  beforeEach(async function () {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-boot-time-'));
    sources = { procStat: path.join(dir, 'stat'), bootIdFile: path.join(dir, 'boot_id') };
  });
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('a restart after the wall clock stepped back 60 s sends the boot time it sent before', async function () {
    await kernel(1_764_900_000, 'boot-a');
    const first = await hostBootTime(dir, sources);
    await kernel(1_764_900_000 - 60, 'boot-a');
    const restarted = await hostBootTime(dir, sources);
    expect(first.toISOString()).to.equal('2025-12-05T02:00:00.000Z');
    expect(restarted.toISOString()).to.equal(first.toISOString());
  });

  it('a new boot id (a reboot) reads btime again and keeps that', async function () {
    await kernel(1_764_900_000, 'boot-a');
    await hostBootTime(dir, sources);
    await kernel(1_764_903_600, 'boot-b');
    expect((await hostBootTime(dir, sources)).toISOString()).to.equal('2025-12-05T03:00:00.000Z');
    expect(JSON.parse(await readFile(path.join(dir, BOOT_TIME_FILE), 'utf8'))).to.deep.equal({ boot_id: 'boot-b', boot_time: '2025-12-05T03:00:00.000Z' });
  });

  for (const garbled of ['', '{"boot_id":"boot-a"', '{"boot_id":"boot-a","boot_time":"yesterday"}', 'null', '[]']) {
    it(`a garbled file (${JSON.stringify(garbled)}) is replaced from btime`, async function () {
      await kernel(1_764_900_000, 'boot-a');
      await writeFile(path.join(dir, BOOT_TIME_FILE), garbled);
      expect((await hostBootTime(dir, sources)).toISOString()).to.equal('2025-12-05T02:00:00.000Z');
      expect(JSON.parse(await readFile(path.join(dir, BOOT_TIME_FILE), 'utf8'))).to.deep.equal({ boot_id: 'boot-a', boot_time: '2025-12-05T02:00:00.000Z' });
    });
  }

  it('a file that cannot be written is logged and btime sent: the start goes on', async function () {
    await kernel(1_764_900_000, 'boot-a');
    await mkdir(path.join(dir, BOOT_TIME_FILE));
    const warnings: unknown[] = [];
    const sent = await hostBootTime(dir, sources, { warn: (...args: unknown[]) => void warnings.push(args) } as Parameters<typeof hostBootTime>[2]);
    expect(sent.toISOString()).to.equal('2025-12-05T02:00:00.000Z');
    expect(warnings).to.have.length(1);
  });

  it('without a boot id nothing is kept: btime as read', async function () {
    await kernel(1_764_900_000, 'boot-a');
    await rm(sources.bootIdFile);
    expect((await hostBootTime(dir, sources)).toISOString()).to.equal('2025-12-05T02:00:00.000Z');
    await kernel(1_764_900_000 - 60, 'unused');
    await rm(sources.bootIdFile);
    expect((await hostBootTime(dir, sources)).toISOString()).to.equal('2025-12-05T01:59:00.000Z');
  });
});
