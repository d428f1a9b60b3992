import { execFile } from 'node:child_process';
import { chown, mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { withIssueLock } from '../../lib/pki/issue-lock.js';
import { PkiError } from '../../lib/pki/pki-error.js';
import { rejectionOf } from '../helpers/rejection.js';

/** Sets the lock's times `agoMs` in the past: to the others it now looks left by a dead (or paused) holder. */
async function age(lock: string, agoMs: number): Promise<void> {
  const then = new Date(Date.now() - agoMs);
  await utimes(lock, then, then);
}

describe('pki: the issue lock between processes sharing a CA folder', function () {
  this.timeout(60_000);
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stops with an error, instead of spinning, when a stale lock cannot be removed', async () => {
    const lock = path.join(dir, 'verifier.lock');
    await mkdir(path.join(lock, 'inside'), { recursive: true });
    await age(lock, 60_000);
    const outcome = await Promise.race([rejectionOf(withIssueLock(dir, 'verifier', async () => 'entered'), PkiError), sleep(5000, 'still waiting')]);
    expect(outcome).to.be.instanceOf(PkiError);
    expect((outcome as PkiError).message).to.include('cannot remove');
  });

  it('a holder taken for dead (paused past the staleness) does not remove, at its end, the lock of the one that took over', async () => {
    const lock = path.join(dir, 'verifier.lock');
    const order: string[] = [];
    let releaseFirst: () => void = () => undefined;
    const first = withIssueLock(dir, 'verifier', async () => {
      order.push('first in');
      await new Promise<void>((resolve) => (releaseFirst = resolve));
      order.push('first out');
    });
    while (!order.includes('first in')) await sleep(10);
    await age(lock, 60_000);
    let releaseSecond: () => void = () => undefined;
    const second = withIssueLock(dir, 'verifier', async () => {
      order.push('second in');
      await new Promise<void>((resolve) => (releaseSecond = resolve));
      order.push('second out');
    });
    while (!order.includes('second in')) await sleep(10);
    releaseFirst();
    await first;
    const third = withIssueLock(dir, 'verifier', async () => {
      order.push('third in');
    });
    await sleep(500);
    releaseSecond();
    await Promise.all([second, third]);
    expect(order).to.deep.equal(['first in', 'second in', 'first out', 'second out', 'third in']);
    expect(await readdir(dir)).to.deep.equal([]);
  });

  it('a live holder working longer than the staleness keeps its lock', async () => {
    const order: string[] = [];
    const slow = withIssueLock(dir, 'verifier', async () => {
      order.push('slow in');
      await sleep(14_000);
      order.push('slow out');
    });
    while (!order.includes('slow in')) await sleep(10);
    // Made 8 s old, the lock is stale (20 s) 12 s from now unless its holder's heartbeat renews it meanwhile.
    await age(path.join(dir, 'verifier.lock'), 8_000);
    await withIssueLock(dir, 'verifier', async () => {
      order.push('waiter in');
    });
    await slow;
    expect(order).to.deep.equal(['slow in', 'slow out', 'waiter in']);
  });

  it('removes a stale lock another user left, which it may not read (run as root: the taker is the user nobody)', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const nobody = 65534;
    await chown(dir, nobody, nobody);
    const lock = path.join(dir, 'verifier.lock');
    await writeFile(lock, '1 left by root', { mode: 0o600 });
    await age(lock, 60_000);
    const child = `const { withIssueLock } = await import(${JSON.stringify(new URL('../../lib/pki/issue-lock.js', import.meta.url).href)});
      console.log(await withIssueLock(process.argv[1], 'verifier', async () => 'entered').catch((error) => error.message));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', child, dir], { uid: nobody, gid: nobody });
    expect(stdout.trim()).to.equal('entered');
    expect(await readdir(dir)).to.deep.equal([]);
  });
});
