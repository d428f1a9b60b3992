import { expect } from 'chai';
import { EXPIRED, settleBefore } from '../../drivers/keylime/status-wait.js';

describe('keylime driver: settleBefore (a read raced against a deadline and the step\'s signal)', function () {
  const never = (): Promise<string> => new Promise<string>(() => undefined);

  it('rejects at once with the reason of a signal aborted before the call (no event fires for it)', async function () {
    const step = new AbortController();
    step.abort(new Error('step cancelled'));
    const settled = await Promise.race([
      settleBefore(never, 600_000, step.signal).then(
        () => 'resolved',
        (error: unknown) => (error as Error).message,
      ),
      new Promise<string>((resolve) => setTimeout(() => resolve('still waiting'), 20_000).unref()),
    ]);
    expect(settled).to.equal('step cancelled');
  });

  it('gives the read\'s answer, EXPIRED past the deadline, and the reason of an abort meanwhile', async function () {
    expect(await settleBefore(() => Promise.resolve('answer'), 60_000, new AbortController().signal)).to.equal('answer');
    expect(await settleBefore(never, 10, new AbortController().signal)).to.equal(EXPIRED);
    const step = new AbortController();
    const pending = settleBefore(never, 600_000, step.signal);
    step.abort(new Error('aborted meanwhile'));
    await pending.then(
      () => expect.fail('resolved'),
      (error: unknown) => expect((error as Error).message).to.equal('aborted meanwhile'),
    );
  });
});
