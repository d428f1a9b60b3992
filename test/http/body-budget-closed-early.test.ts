import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import { serverApiVersionPolicy } from '../../lib/http/api-version.js';
import { BodyBudget } from '../../lib/http/body-budget.js';
import { ok } from '../../lib/http/envelope.js';
import { createService, type KeylimeService } from '../../lib/http/keylime-service.js';

const BODY_BYTES = 1024 * 1024;

/**
 * A route that authenticates before its body is read (a push agent's session token, looked up in the
 * database) admits the body into its budget after that wait. A client that left meanwhile had its
 * connection's close reported before the budget listened for it: its bytes were never released, and
 * a few such clients (a flaky network will do) left the route refusing every body with 503 for good.
 */
describe('http: a body budget releases a body whose client left before it was admitted', function () {
  this.timeout(30_000);
  let service: KeylimeService;
  let port: number;
  let budget: BodyBudget;
  let authenticated = 0;
  const sockets: Socket[] = [];

  beforeEach(async function () {
    authenticated = 0;
    budget = new BodyBudget(2 * BODY_BYTES);
    service = createService({ name: 'test', apiVersions: serverApiVersionPolicy(), bodyLimit: 2 * BODY_BYTES });
    service.route({
      method: 'POST',
      url: '/work',
      rawBody: true,
      bodyBudget: budget,
      // Answers once the client has gone, as a slow token look-up would.
      authenticate: async (_request, _params, reply) => {
        await new Promise<void>((resolve) => reply.raw.once('close', () => resolve()));
        await new Promise((resolve) => setTimeout(resolve, 20));
        authenticated += 1;
        return 'agent';
      },
      handler: async ({ reply }) => ok(reply, {}),
    });
    ({ port } = await service.listen({ port: 0 }));
  });

  afterEach(async function () {
    for (const socket of sockets.splice(0)) socket.destroy();
    await service.close();
  });

  /** Sends a request's head declaring `BODY_BYTES`, then leaves. */
  async function sendHeadAndLeave(): Promise<void> {
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    sockets.push(socket);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`POST /v2.6/work HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${BODY_BYTES}\r\n\r\n`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.destroy();
  }

  it('holds nothing once the clients that left during authentication are gone', async function () {
    await sendHeadAndLeave();
    await sendHeadAndLeave();
    while (authenticated < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    // The admission and the abort of the body's read both follow the authentication within a few turns.
    for (let turn = 0; turn < 50 && budget.inFlight > 0; turn += 1) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(budget.inFlight, 'bytes of clients long gone').to.equal(0);
  });
});
