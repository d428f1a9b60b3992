import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { openKeylimeConnection } from '../../drivers/keylime/keylime-connection.js';
import type { KeylimeNodeSettings } from '../../drivers/keylime/keylime-driver-info.js';

/**
 * The liveness routes' client belongs to the driver's connection: opened once at first use, and never
 * left open after the connection closed (a read the status wait abandoned may ask for it afterwards).
 */
describe('keylime driver: the liveness client of a connection', function () {
  let server: Server;
  let connections = 0;
  let url = '';

  before(async function () {
    server = createServer((_request, response) => response.writeHead(404).end());
    server.on('connection', () => (connections += 1));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async function () {
    await new Promise((resolve) => server.close(resolve));
  });

  const open = () =>
    openKeylimeConnection({ verifierUrl: url, registrarUrl: url, tlsCa: undefined, tlsCert: undefined, tlsKey: undefined } as unknown as KeylimeNodeSettings, 20_000);

  it('is one client per connection', async function () {
    const connection = await open();
    try {
      expect(connection.liveness()).to.equal(connection.liveness());
    } finally {
      connection.close();
    }
  });

  it('refuses requests without connecting when first asked for after the connection closed', async function () {
    const connection = await open();
    connection.close();
    const before = connections;
    const error = await connection
      .liveness()
      .status('d432fbb3-d2f1-4a97-9ef7-75bd81c00024')
      .then(
        () => undefined,
        (failure: unknown) => failure,
      );
    expect(error).to.be.instanceOf(ServiceUnreachableError);
    expect((error as Error).message).to.include('the client was closed');
    expect(connections).to.equal(before);
  });
});
