import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

interface Relayed {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Set by `cutNextReply` on the connections open then. */
  cutNext: boolean;
}

/**
 * A TCP proxy in front of a real server (plain or TLS: bytes are relayed as they are) that can cut a
 * reply after the server acted: `cutNextReply()` makes the next reply on a connection already open
 * (a kept-alive one) close the client's side before a single byte of it is relayed. The server has run
 * its handler and committed; the client sees a kept-alive connection closed under its request with no
 * answer byte, as when a server is killed between its commit and its reply. Connections opened later
 * (the client's resend) are relayed untouched.
 */
export class CutReplyProxy {
  private readonly relayed = new Set<Relayed>();
  private server: Server | undefined;
  private armed = false;
  /** Replies cut so far. */
  cuts = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Listens on a free loopback port; resolves to it. */
  async start(): Promise<number> {
    const server = createServer((client) => this.relay(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  cutNextReply(): void {
    this.armed = true;
    for (const connection of this.relayed) connection.cutNext = true;
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.relayed) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
  }

  private relay(client: Socket): void {
    const upstream = connect(this.targetPort, this.targetHost);
    const connection: Relayed = { client, upstream, cutNext: false };
    this.relayed.add(connection);
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      if (this.armed && connection.cutNext) {
        this.armed = false;
        this.cuts += 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    for (const socket of [client, upstream]) {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.relayed.delete(connection);
        client.destroy();
        upstream.destroy();
      });
    }
  }
}
