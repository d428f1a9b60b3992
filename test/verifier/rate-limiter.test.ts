import { expect } from 'chai';
import { RateLimiter } from '../../lib/verifier/push/rate-limiter.js';

describe('push model: RateLimiter (sliding window per key)', function () {
  it('allows `limit` hits a window, then answers the seconds until the oldest leaves it', function () {
    const limiter = new RateLimiter(2, 60_000);
    expect(limiter.take('a', 1_000)).to.equal(undefined);
    expect(limiter.take('a', 11_000)).to.equal(undefined);
    expect(limiter.take('a', 21_000)).to.equal(40);
    expect(limiter.wait('a', 31_000)).to.equal(30);
    expect(limiter.wait('b', 31_000)).to.equal(undefined);
    expect(limiter.take('a', 61_001)).to.equal(undefined);
  });

  it('never answers more than a window, even to a caller whose time was read before the hits it meets', function () {
    const limiter = new RateLimiter(1, 60_000);
    expect(limiter.take('a', 10_500)).to.equal(undefined);
    // A proof that read its time at 10 s, then waited on the database while another was counted at 10.5 s.
    expect(limiter.wait('a', 10_000)).to.equal(60);
    expect(limiter.take('a', 10_000)).to.equal(60);
  });
});
