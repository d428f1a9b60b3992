import { expect } from 'chai';
import { verdictBatchDelayMs } from '../../lib/verifier/verdict-batch-delay.js';

describe('verdictBatchDelayMs', () => {
  it('is a tenth of quote_interval: 200 ms at Keylime\'s default 2 s, 100 ms at 1 s', () => {
    expect(verdictBatchDelayMs(2, 30)).to.equal(200);
    expect(verdictBatchDelayMs(1, 30)).to.equal(100);
  });

  it('waits at least 20 ms however short the interval, so a fast test fleet still shares transactions', () => {
    expect(verdictBatchDelayMs(0.1, 30)).to.equal(20);
    expect(verdictBatchDelayMs(0, 30)).to.equal(20);
  });

  it('waits at most 500 ms however long the interval, so a verdict is never held back for long', () => {
    expect(verdictBatchDelayMs(60, 30)).to.equal(500);
    expect(verdictBatchDelayMs(5, 30)).to.equal(500);
  });

  it('waits at most a tenth of the lease, so a verdict waiting to be stored never lets its agent\'s lease lapse', () => {
    expect(verdictBatchDelayMs(4, 2)).to.equal(200);
    expect(verdictBatchDelayMs(60, 1)).to.equal(100);
    expect(verdictBatchDelayMs(2, 1)).to.equal(100);
  });
});
