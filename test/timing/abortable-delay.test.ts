import { expect } from 'chai';
import { abortableDelay } from '../../lib/timing/abortable-delay.js';

/** The one abortable wait (services and benchmarks): the signal's own reason, not a wrapping AbortError. */
describe('timing: abortableDelay', () => {
  it('rejects with the signal\'s reason itself, at once, whether aborted before or during the wait', async () => {
    const stop = new Error('SIGINT');
    const during = new AbortController();
    const waiting = abortableDelay(60_000, during.signal).then(() => 'resolved', (error: unknown) => error);
    during.abort(stop);
    expect(await waiting).to.equal(stop);
    expect(await abortableDelay(60_000, AbortSignal.abort(stop)).then(() => 'resolved', (error: unknown) => error)).to.equal(stop);
  });

  it('resolves after its time, a negative time as none', async () => {
    const signal = new AbortController().signal;
    expect(await abortableDelay(5, signal).then(() => 'resolved')).to.equal('resolved');
    expect(await abortableDelay(-1000, signal).then(() => 'resolved')).to.equal('resolved');
  });
});
