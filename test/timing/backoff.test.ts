import { expect } from 'chai';
import { backoffDelayMs, withJitter } from '../../lib/timing/backoff.js';

describe('exponential back-off', function () {
  it('without maxDoublings only maxDelayMs bounds the wait, even after very many failures', function () {
    const backoff = { initialDelayMs: 250, maxDelayMs: 5_000 };
    expect([1, 2, 3, 4, 5, 6, 2_000].map((n) => backoffDelayMs(n, backoff))).to.deep.equal([250, 500, 1_000, 2_000, 4_000, 5_000, 5_000]);
  });

  it('maxDoublings stops the growth below maxDelayMs; an unbounded maximum grows with every failure', function () {
    expect([1, 2, 3, 4].map((n) => backoffDelayMs(n, { initialDelayMs: 100, maxDelayMs: 10_000, maxDoublings: 2 }))).to.deep.equal([100, 200, 400, 400]);
    expect([1, 5, 11].map((n) => backoffDelayMs(n, { initialDelayMs: 1_000, maxDelayMs: Infinity }))).to.deep.equal([1_000, 16_000, 1_024_000]);
  });

  it('jitter spreads a wait over its upper half', function () {
    expect([0, 0.5, 1].map((r) => withJitter(1_000, () => r))).to.deep.equal([500, 750, 1_000]);
  });
});
