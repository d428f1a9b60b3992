import { expect } from 'chai';
import { serverApiVersionPolicy } from '../../lib/http/api-version.js';
import { ok } from '../../lib/http/envelope.js';
import { createKeylimeClient } from '../../lib/http/keylime-client.js';
import { ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { createService } from '../../lib/http/keylime-service.js';
import { runUntilSignal } from '../../lib/http/service-lifecycle.js';

describe('http: service lifecycle', () => {
  it('announces where it listens, and closes everything on SIGTERM', async () => {
    const service = createService({ name: 'registrar', apiVersions: serverApiVersionPolicy() });
    service.route({ method: 'GET', url: '/version', versioned: false, handler: ({ reply }) => ok(reply, {}) });
    const lines: string[] = [];
    const address = await service.listen({ port: 0, announce: (line) => lines.push(line) });
    expect(address.url).to.equal(`http://127.0.0.1:${address.port}`);
    expect(lines).to.deep.equal([`registrar listening on ${address.url}`]);

    const closed: string[] = [];
    const failures: unknown[] = [];
    const before = process.listenerCount('SIGTERM');
    const done = runUntilSignal(
      [
        { close: () => Promise.reject(new Error('db close failed')) },
        service,
        { close: async () => void closed.push('poller') },
      ],
      { onCloseError: (error) => failures.push(error) },
    );
    expect(process.listenerCount('SIGTERM')).to.equal(before + 1);
    process.kill(process.pid, 'SIGTERM');
    expect(await done).to.equal('SIGTERM');
    expect(closed).to.deep.equal(['poller']);
    expect(failures.map((e) => (e as Error).message)).to.deep.equal(['db close failed']);
    expect(process.listenerCount('SIGTERM')).to.equal(before);
    const after = await createKeylimeClient({ baseUrl: address.url, timeoutMs: 2000 }).get('/version').catch((e: unknown) => e);
    expect(after).to.be.instanceOf(ServiceUnreachableError);
  });
});
