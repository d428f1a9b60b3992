import { connect, createServer, type Server, type Socket } from 'node:net';

/** One client connection and its upstream twin. */
interface Flow {
  readonly client: Socket;
  readonly upstream: Socket;
}

/**
 * A TCP proxy to PostgreSQL that a test can turn into a black hole: while dark it forwards nothing in
 * either direction but closes nothing either, so both ends see a silent peer, as behind a firewall
 * that drops packets or after a pulled cable (the TCP proxy in test/verifier/helpers instead cuts
 * connections, which the client notices at once). New connections are accepted and held silent too.
 * `resume()` forwards again, including what was held back.
 */
export class BlackHoleProxy {
  private readonly flows = new Set<Flow>();
  private server: Server | undefined;
  private dark = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => this.relay(client));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Stops forwarding; sockets stay open and unread. */
  blackHole(): void {
    this.dark = true;
    for (const flow of this.flows) {
      BlackHoleProxy.hold(flow);
    }
  }

  /** Forwards again; a no-op when already forwarding (piping twice would duplicate every byte). */
  resume(): void {
    if (!this.dark) {
      return;
    }
    this.dark = false;
    for (const flow of this.flows) {
      BlackHoleProxy.forward(flow);
    }
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.flows) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
  }

  private relay(client: Socket): void {
    const upstream = connect(this.targetPort, this.targetHost);
    const flow: Flow = { client, upstream };
    this.flows.add(flow);
    for (const socket of [client, upstream]) {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.flows.delete(flow);
        client.destroy();
        upstream.destroy();
      });
    }
    if (this.dark) {
      BlackHoleProxy.hold(flow);
    } else {
      BlackHoleProxy.forward(flow);
    }
  }

  private static forward({ client, upstream }: Flow): void {
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private static hold({ client, upstream }: Flow): void {
    client.unpipe(upstream);
    upstream.unpipe(client);
    client.pause();
    upstream.pause();
  }
}
