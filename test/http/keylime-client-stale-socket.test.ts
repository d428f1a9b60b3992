import { createServer as createPlainServer, type IncomingMessage, type Server as PlainServer, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { expect } from 'chai';
import { ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { createKeylimeClient, type KeylimeClient } from '../../lib/http/keylime-client.js';
import { tlsFixture } from './tls-fixture.js';

/**
 * What the server does with a request that arrives on a connection that already served one:
 * `answer`; `drop` it unanswered (the server's keep-alive timeout closed that connection as the
 * request went out on it, as node does: destroyed); `end` it unanswered, gracefully (a FIN, and a TLS
 * close alert over TLS, as other servers close idle connections); `drop-all`, every request, fresh connections too; `head-then-drop`,
 * the first bytes of a status line, then the connection is closed; `drop-late-then-hang`, dropped
 * `LATE_DROP_MS` after it arrived, while a request on a fresh connection is never answered.
 */
type Mode = 'answer' | 'drop' | 'end' | 'drop-all' | 'head-then-drop' | 'drop-late-then-hang';

/** 3.5 s: more than a CI host's stall of this process (~3 s), in which the drop and a deadline due 2 s after it would fire together, the deadline before the drop is read. */
const LATE_DROP_MS = 3_500;

const OK = JSON.stringify({ code: 200, status: 'Success', results: {} });

/** A keep-alive server (plain or TLS) that plays the keep-alive race on demand and counts what arrives. */
class RacingServer {
  mode: Mode = 'answer';
  /** Every request that reached the server, as `METHOD path`. */
  readonly arrivals: string[] = [];
  /** Requests served per connection. */
  private readonly served = new WeakMap<Socket, number>();
  /** Connections whose first request was left unanswered (`drop-late-then-hang`), each until it closed. */
  readonly hanging: Promise<void>[] = [];
  readonly server: PlainServer | TlsServer;

  constructor(private readonly tls: boolean) {
    const handler = (request: IncomingMessage, response: ServerResponse): void => this.handle(request, response);
    if (tls) {
      const fixture = tlsFixture();
      this.server = createTlsServer({ cert: fixture.server.certPem, key: fixture.server.keyPem }, handler);
    } else {
      this.server = createPlainServer(handler);
    }
    this.server.keepAliveTimeout = 60_000;
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    request.resume();
    request.on('end', () => {
      this.arrivals.push(`${request.method ?? ''} ${request.url ?? ''}`);
      const socket = request.socket;
      const reused = (this.served.get(socket) ?? 0) > 0;
      this.served.set(socket, (this.served.get(socket) ?? 0) + 1);
      if (this.mode === 'drop-all' || (reused && this.mode === 'drop')) {
        socket.destroy();
        return;
      }
      if (reused && this.mode === 'end') {
        socket.end();
        return;
      }
      if (this.mode === 'drop-late-then-hang') {
        if (reused) setTimeout(() => socket.destroy(), LATE_DROP_MS);
        else this.hanging.push(new Promise((resolve) => socket.once('close', () => resolve())));
        return;
      }
      if (reused && this.mode === 'head-then-drop') {
        socket.write('HTTP/1.1 200', () => socket.destroy());
        return;
      }
      // Held a moment, so that concurrent requests each open a connection of their own.
      setTimeout(() => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(OK);
      }, 20);
    });
  }
}

/** Fills the client's pool with `count` idle kept-alive connections. */
async function openIdleConnections(client: KeylimeClient, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, () => client.get('/warm')));
}

async function failureOf(run: Promise<unknown>): Promise<unknown> {
  return run.then(
    () => undefined,
    (error: unknown) => error,
  );
}

for (const tls of [false, true]) {
  describe(`http: Keylime client over ${tls ? 'TLS' : 'plain HTTP'}, kept-alive connections the server closed as a request went out`, function () {
    let racing: RacingServer;
    let baseUrl: string;
    let client: KeylimeClient;

    beforeEach(async function () {
      racing = new RacingServer(tls);
      baseUrl = await racing.listen();
      client = createKeylimeClient({ baseUrl, timeoutMs: 20_000, ...(tls ? { tls: { ca: tlsFixture().ca.certPem } } : {}) });
    });
    afterEach(async function () {
      client.close();
      await racing.close();
    });

    const arrivalsOf = (request: string): number => racing.arrivals.filter((arrival) => arrival === request).length;

    for (const mode of ['drop', 'end'] as const) {
      it(`sends a GET once more on a fresh connection when every idle kept-alive connection was closed (${mode})`, async function () {
        await openIdleConnections(client, 3);
        racing.mode = mode;
        const reply = await client.get('/version');
        expect(reply.code).to.equal(200);
        // The stale connection it went out on first, then a fresh one.
        expect(arrivalsOf('GET /version')).to.equal(2);
      });
    }

    it('sends PUT and DELETE once more too', async function () {
      await openIdleConnections(client, 3);
      racing.mode = 'drop';
      expect((await client.put('/v2.6/agents/a/activate', { auth_tag: 'x' })).code).to.equal(200);
      expect((await client.delete('/v2.6/agents/a')).code).to.equal(200);
      expect(arrivalsOf('PUT /v2.6/agents/a/activate')).to.equal(2);
      expect(arrivalsOf('DELETE /v2.6/agents/a')).to.equal(2);
    });

    it('does not send a POST twice', async function () {
      await openIdleConnections(client, 3);
      racing.mode = 'drop';
      const error = await failureOf(client.post('/v2.6/agents/a', { ek_tpm: 'x' }));
      expect(error).to.be.instanceOf(ServiceUnreachableError);
      expect((error as ServiceUnreachableError).reason).to.equal('network');
      expect(arrivalsOf('POST /v2.6/agents/a')).to.equal(1);
    });

    it('fails closed with the typed transport error when the fresh connection is closed too (sent twice, no more)', async function () {
      await openIdleConnections(client, 3);
      racing.mode = 'drop-all';
      const error = await failureOf(client.get('/version'));
      expect(error).to.be.instanceOf(ServiceUnreachableError);
      expect((error as ServiceUnreachableError).reason).to.equal('network');
      expect((error as Error).message).to.match(new RegExp(`^${baseUrl}/version: unreachable: ECONNRESET: `));
      expect(arrivalsOf('GET /version')).to.equal(2);
    });

    it("keeps the resend within the first attempt's deadline and closes its connection when it expires", async function () {
      // The drop comes 3.5 s before the deadline, and a resend with a deadline of its own would end 3.5 s after it.
      const deadlineMs = 7_000;
      const bounded = createKeylimeClient({ baseUrl, timeoutMs: deadlineMs, ...(tls ? { tls: { ca: tlsFixture().ca.certPem } } : {}) });
      try {
        await openIdleConnections(bounded, 1);
        racing.mode = 'drop-late-then-hang';
        const started = Date.now();
        const error = await failureOf(bounded.get('/version'));
        const failedAfterMs = Date.now() - started;
        expect(error).to.be.instanceOf(ServiceUnreachableError);
        expect((error as ServiceUnreachableError).reason).to.equal('timeout');
        expect(arrivalsOf('GET /version')).to.equal(2);
        // The fresh connection is closed when the deadline aborts the resend.
        await Promise.all(racing.hanging);
        const closedAfterMs = Date.now() - started;
        // A resend with a deadline (or a socket idle timeout) of its own would end at LATE_DROP_MS + deadlineMs at the earliest.
        expect(failedAfterMs).to.be.below(LATE_DROP_MS + deadlineMs);
        expect(closedAfterMs).to.be.below(LATE_DROP_MS + deadlineMs);
      } finally {
        bounded.close();
      }
    });

    it('does not send a GET again once a byte of the answer arrived', async function () {
      await openIdleConnections(client, 3);
      racing.mode = 'head-then-drop';
      const error = await failureOf(client.get('/version'));
      expect(error).to.be.instanceOf(ServiceUnreachableError);
      expect(arrivalsOf('GET /version')).to.equal(1);
    });
  });
}

describe('http: Keylime client, idle kept-alive connections', function () {
  it('closes an idle connection itself before the server announced it would (Keep-Alive: timeout=3)', async function () {
    const server = createPlainServer((request, response) => {
      request.resume();
      response.end(OK);
    });
    server.keepAliveTimeout = 3_000;
    const closedBy = new Promise<'client' | 'server'>((resolve) => {
      server.once('connection', (socket: Socket) => {
        // A FIN from the client arrives as `end`; the server's own keep-alive timeout destroys the socket without one.
        socket.once('end', () => resolve('client'));
        socket.once('close', () => resolve('server'));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = createKeylimeClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutMs: 20_000 });
    try {
      await client.get('/version');
      expect(await closedBy).to.equal('client');
    } finally {
      client.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
