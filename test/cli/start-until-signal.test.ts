import { once } from 'node:events';
import { expect } from 'chai';
import { startUntilSignal } from '../../lib/cli/start-until-signal.js';

describe('CLI: a stop signal while an agent starts', function () {
  it('SIGTERM during the start aborts it; the start\'s rejection becomes "stopped" and the handlers are removed', async function () {
    const before = process.listenerCount('SIGTERM');
    const started = startUntilSignal(async (signal) => {
      await once(signal, 'abort');
      throw signal.reason;
    });
    expect(process.listenerCount('SIGTERM')).to.equal(before + 1);
    process.kill(process.pid, 'SIGTERM');
    expect(await started).to.equal(undefined);
    expect(process.listenerCount('SIGTERM')).to.equal(before);
  });

  it('a service that finished starting as SIGINT came is closed, not returned', async function () {
    const closed: string[] = [];
    const started = startUntilSignal(async (signal) => {
      await once(signal, 'abort');
      return { close: async () => void closed.push('agent') };
    });
    process.kill(process.pid, 'SIGINT');
    expect(await started).to.equal(undefined);
    expect(closed).to.deep.equal(['agent']);
  });

  it('without a signal, the started service is returned and a failure is thrown', async function () {
    const service = { close: async () => undefined };
    expect(await startUntilSignal(async () => service)).to.equal(service);
    const failure = new Error('registrar refused');
    expect(await startUntilSignal(() => Promise.reject(failure)).catch((caught: unknown) => caught)).to.equal(failure);
  });
});
