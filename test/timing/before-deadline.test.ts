import { expect } from 'chai';
import { beforeDeadline } from '../../lib/timing/before-deadline.js';

describe('beforeDeadline', function () {
  it('resolves with the work that ends in time', async function () {
    expect(await beforeDeadline(Promise.resolve(7), AbortSignal.timeout(1000))).to.equal(7);
  });

  it("rejects with the deadline's reason once it aborts, whatever the work does", async function () {
    const error = await beforeDeadline(new Promise(() => undefined), AbortSignal.timeout(20)).catch((e: unknown) => e);
    expect(error).to.have.property('name', 'TimeoutError');
  });

  it('rejects at once for a deadline already past (its abort event will not fire again)', async function () {
    const past = AbortSignal.abort(new Error('past'));
    const outcome = await Promise.race([
      beforeDeadline(new Promise(() => undefined), past).catch((e: unknown) => e),
      new Promise((resolve) => setTimeout(() => resolve('still waiting'), 200)),
    ]);
    expect(outcome).to.have.property('message', 'past');
  });
});
