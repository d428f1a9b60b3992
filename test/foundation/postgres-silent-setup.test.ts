import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { expect } from 'chai';
import { createDatabase } from '../../lib/db/database-factory.js';

/** A PostgreSQL backend message: type byte, int32 length (itself included), body (frontend/backend protocol §55.7). */
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

/**
 * A server that completes PostgreSQL's start-up (AuthenticationOk, ReadyForQuery) and then answers
 * nothing: every connection's first statement, which is knex's own set-up (`select version()`),
 * waits for ever. It counts the connections still open.
 */
class SilentAfterStartup {
  readonly open = new Set<Socket>();
  private server: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((socket) => {
      this.open.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.open.delete(socket));
      socket.once('data', () => {
        const authenticationOk = message('R', Buffer.from([0, 0, 0, 0]));
        const readyForQuery = message('Z', Buffer.from('I', 'latin1'));
        socket.write(Buffer.concat([authenticationOk, readyForQuery]));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    for (const socket of this.open) socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

describe('PostgreSQL silent after start-up (fake server)', function () {
  this.timeout(15_000);
  let server: SilentAfterStartup;

  before(async function () {
    server = new SilentAfterStartup();
    await server.start();
  });

  after(async function () {
    await server.close();
  });

  it('fails opening the database within the bounds and leaves none of the connections it tried open', async function () {
    const bounds = { connectMs: 1_000, acquireMs: 2_000, statementMs: 300 };
    const started = Date.now();
    const error = await createDatabase({ url: `postgres://postgres@127.0.0.1:${server.port}/test`, dataDir: tmpdir(), searchPath: 'x', postgresBounds: bounds }).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect((error as { code?: string } | undefined)?.code).to.equal('ERR_DATABASE_UNAVAILABLE');
    // The server never answers: unbounded, the opening would hang; room for a CI host that stalls this process for ~3 s.
    expect(Date.now() - started).to.be.below(bounds.acquireMs + 4_000);
    // The client ends each connection whose set-up statement got no reply: give the FINs a moment.
    for (let waited = 0; server.open.size > 0 && waited < 5_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(server.open.size, 'connections left open by the client').to.equal(0);
  });
});
