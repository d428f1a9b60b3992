import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import { serverApiVersionPolicy } from '../../lib/http/api-version.js';
import { BodyBudget } from '../../lib/http/body-budget.js';
import { ok } from '../../lib/http/envelope.js';
import { createService, type KeylimeService } from '../../lib/http/keylime-service.js';

const BODY_BYTES = 2 * 1024 * 1024;

/**
 * A route's `BodyBudget` counts a body until its reply is done, and until its handler is done with it
 * too: a client that sends its whole body and then closes the connection used to release the bytes at
 * once while the handler (a public `POST /verify/evidence` queued in the evidence threads) still held
 * them, so such clients could pile up bodies without bound, the budget never full.
 */
describe('http: a body budget counts a body its handler still holds after the client left', function () {
  this.timeout(60_000);
  let service: KeylimeService;
  let port: number;
  let budget: BodyBudget;
  const handling: { closed: Promise<void>; done: () => void }[] = [];
  const sockets: Socket[] = [];

  beforeEach(async function () {
    handling.length = 0;
    budget = new BodyBudget(2 * BODY_BYTES);
    service = createService({ name: 'test', apiVersions: serverApiVersionPolicy(), bodyLimit: 4 * BODY_BYTES });
    service.route({
      method: 'POST',
      url: '/work',
      rawBody: true,
      bodyBudget: budget,
      handler: async ({ reply }) => {
        const closed = new Promise<void>((resolve) => reply.raw.once('close', () => resolve()));
        await new Promise<void>((resolve) => handling.push({ closed, done: resolve }));
        return ok(reply, {});
      },
    });
    ({ port } = await service.listen({ port: 0 }));
  });

  afterEach(async function () {
    for (const socket of sockets.splice(0)) socket.destroy();
    for (const { done } of handling) done();
    await service.close();
  });

  /** Sends a whole request of `BODY_BYTES` and resolves with its socket once the handler has it. */
  async function sendWhole(): Promise<Socket> {
    const before = handling.length;
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    sockets.push(socket);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`POST /v2.6/work HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${BODY_BYTES}\r\n\r\n`);
    socket.write(Buffer.alloc(BODY_BYTES, 0x20));
    while (handling.length === before) await new Promise((resolve) => setTimeout(resolve, 5));
    return socket;
  }

  /** A whole request's reply status (the connection's first bytes). */
  async function statusOfWhole(): Promise<number> {
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    sockets.push(socket);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const head = new Promise<string>((resolve) => socket.once('data', (data: Buffer) => resolve(data.toString('latin1'))));
    socket.write(`POST /v2.6/work HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${BODY_BYTES}\r\n\r\n`);
    socket.write(Buffer.alloc(BODY_BYTES, 0x20));
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(await head)?.[1]);
  }

  it('keeps the body counted while its handler runs after the client closed, refuses past the budget, and releases it when the handler ends', async function () {
    (await sendWhole()).destroy();
    await handling[0]?.closed;
    expect(budget.inFlight, 'the handler still holds the body of the client that left').to.equal(BODY_BYTES);
    (await sendWhole()).destroy();
    await handling[1]?.closed;
    expect(budget.inFlight).to.equal(2 * BODY_BYTES);
    expect(await statusOfWhole(), 'two bodies held by their handlers fill the budget').to.equal(503);
    handling[0]?.done();
    while (budget.inFlight > BODY_BYTES) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(budget.inFlight).to.equal(BODY_BYTES);
    handling[1]?.done();
    while (budget.inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  });

  it('releases the body of a client that stays once its reply is sent', async function () {
    const socket = await sendWhole();
    const reply = new Promise<string>((resolve) => socket.once('data', (data: Buffer) => resolve(data.toString('latin1'))));
    expect(budget.inFlight).to.equal(BODY_BYTES);
    handling[0]?.done();
    expect(await reply).to.match(/^HTTP\/1\.1 200 /);
    while (budget.inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  });
});
