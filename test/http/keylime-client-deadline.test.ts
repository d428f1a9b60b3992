import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { createKeylimeClient } from '../../lib/http/keylime-client.js';

describe('keylime client: a deadline for the whole request', function () {
  let server: Server;
  let baseUrl: string;
  const drips: NodeJS.Timeout[] = [];

  before(async function () {
    // Headers at once, then one byte of the body every 50 ms, for ever: never idle long enough for a
    // socket timeout, never finished.
    server = createServer((request, response: ServerResponse) => {
      request.resume();
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"code": 200, "status": "Success", "results": {"padding": "');
      drips.push(setInterval(() => response.write('x'), 50));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async function () {
    drips.forEach(clearInterval);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('gives up on a server that drips its reply slower than the timeout allows', async function () {
    // Without the deadline the call never returns: fail fast rather than at the suite's timeout.
    this.timeout(5_000);
    const client = createKeylimeClient({ baseUrl, timeoutMs: 400 });
    try {
      const error = await client.get('/v2.6/agents/a').catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(ServiceUnreachableError);
      expect(error).to.deep.include({ reason: 'timeout', url: `${baseUrl}/v2.6/agents/a` });
      expect((error as Error).message).to.equal(`${baseUrl}/v2.6/agents/a: unreachable: no complete reply within 400 ms`);
    } finally {
      client.close();
    }
  });
});
