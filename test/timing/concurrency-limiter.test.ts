import { expect } from 'chai';
import { ConcurrencyLimiter } from '../../lib/timing/concurrency-limiter.js';

describe('ConcurrencyLimiter', function () {
  it('runs at most `limit` tasks at once, in FIFO order, and releases a slot when a task throws', async function () {
    const limiter = new ConcurrencyLimiter(3);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const task = (i: number) => async (): Promise<number> => {
      running += 1;
      peak = Math.max(peak, running);
      order.push(i);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running -= 1;
      if (i === 4) {
        throw new Error('task 4 failed');
      }
      return i;
    };
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => limiter.run(task(i))));
    expect(peak).to.equal(3);
    expect(order).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(results.filter((r) => r.status === 'rejected')).to.have.length(1);
    expect(limiter.running).to.equal(0);
    expect(limiter.queued).to.equal(0);
    expect(() => new ConcurrencyLimiter(0)).to.throw(RangeError);
  });

  it('lets a waiting task whose signal aborts leave the queue without running; a started task runs to its end', async function () {
    const limiter = new ConcurrencyLimiter(1);
    let release = (): void => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const ran: string[] = [];
    const first = limiter.run(async () => {
      const started = new AbortController();
      ran.push('first');
      started.abort();
      await held;
    });
    const leaving = new AbortController();
    const left = limiter.run(async () => void ran.push('left'), leaving.signal);
    const after = limiter.run(async () => void ran.push('after'));
    expect(limiter.queued).to.equal(2);
    leaving.abort(new Error('client gone'));
    expect(await left.then(() => 'ran', (error: Error) => error.message)).to.equal('client gone');
    expect(limiter.queued).to.equal(1);
    const gone = new AbortController();
    gone.abort(new Error('gone before asking'));
    expect(await limiter.run(async () => void ran.push('never'), gone.signal).then(() => 'ran', (error: Error) => error.message)).to.equal('gone before asking');
    release();
    await Promise.all([first, after]);
    expect(ran).to.deep.equal(['first', 'after']);
    expect(limiter.running).to.equal(0);
    expect(limiter.queued).to.equal(0);
  });
});
