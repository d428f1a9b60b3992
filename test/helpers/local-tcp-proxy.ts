import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { TEST_DATABASE_URL } from './databases.js';

/** One accepted client connection and the connection opened for it to the target. */
export interface ProxiedConnection {
  readonly client: Socket;
  readonly upstream: Socket;
}

/**
 * What every test proxy in front of PostgreSQL shares: it listens on a free loopback port (`port`, set
 * by `start()`), opens one upstream connection per client, closes both sides when either closes, and
 * `close()` drops every connection and stops listening. A subclass decides in `accept` what passes.
 */
export abstract class LocalTcpProxy {
  protected readonly connections = new Set<ProxiedConnection>();
  private server: Server | undefined;
  port = 0;

  /** The target is the test PostgreSQL (`TEST_DATABASE_URL`) unless given. */
  constructor(
    private readonly targetHost: string = new URL(TEST_DATABASE_URL).hostname,
    private readonly targetPort: number = Number(new URL(TEST_DATABASE_URL).port || 5432),
  ) {}

  async start(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
  }

  /** A new client connection: relay it (after `openUpstream`) or destroy it. */
  protected abstract accept(client: Socket): void;

  /** Connects `client` to the target; nothing flows until the subclass pipes or writes. */
  protected openUpstream(client: Socket): ProxiedConnection {
    const upstream = connect(this.targetPort, this.targetHost);
    const connection: ProxiedConnection = { client, upstream };
    this.connections.add(connection);
    for (const socket of [client, upstream]) {
      // 'close' follows every 'error': the pair is torn down there.
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.connections.delete(connection);
        client.destroy();
        upstream.destroy();
      });
    }
    return connection;
  }

  /** Destroys both sides of every open connection. */
  protected dropConnections(): void {
    for (const { client, upstream } of this.connections) {
      client.destroy();
      upstream.destroy();
    }
  }
}
