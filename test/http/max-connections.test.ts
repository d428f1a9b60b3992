import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import { InvalidConfig } from '../../interfaces/errors.js';
import { serverApiVersionPolicy } from '../../lib/http/api-version.js';
import { ok } from '../../lib/http/envelope.js';
import { createService, DEFAULT_MAX_CONNECTIONS, type KeylimeService } from '../../lib/http/keylime-service.js';

/** M-2: a service bounds its open connections (the verifier's `maxConnections`), whatever the clients do. */
describe('http: a service holds at most maxConnections connections', function () {
  let service: KeylimeService;
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await service?.close();
  });

  const open = (port: number) =>
    new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
      socket.once('error', reject);
      sockets.push(socket);
    });

  it('closes a connection past the bound as it arrives; the default is 10,000', async () => {
    expect(createService({ name: 'd', apiVersions: serverApiVersionPolicy() }).app.server.maxConnections).to.equal(DEFAULT_MAX_CONNECTIONS);
    service = createService({ name: 'bounded', apiVersions: serverApiVersionPolicy(), maxConnections: 2 });
    service.route({ method: 'GET', url: '/version', versioned: false, handler: ({ reply }) => ok(reply, {}) });
    const { port } = await service.listen({ port: 0 });
    await open(port);
    await open(port);
    const third = await open(port);
    const closed = await new Promise<boolean>((resolve) => {
      third.once('close', () => resolve(true));
      third.write('GET /version HTTP/1.1\r\nHost: x\r\n\r\n');
      setTimeout(() => resolve(false), 2000);
    });
    expect(closed).to.equal(true);
  });

  it('refuses a bound that is not an integer from 1 to 1000000', () => {
    expect(() => createService({ name: 'x', apiVersions: serverApiVersionPolicy(), maxConnections: 0 })).to.throw(InvalidConfig, 'maxConnections');
  });
});
