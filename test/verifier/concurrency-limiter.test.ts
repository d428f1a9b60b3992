import { expect } from 'chai';
import { ConcurrencyLimiter } from '../../lib/verifier/concurrency-limiter.js';

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
});
