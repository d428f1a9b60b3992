import type { Socket } from 'node:net';
import { LocalTcpProxy } from '../../helpers/local-tcp-proxy.js';

/**
 * A TCP proxy between a service and PostgreSQL that a test can cut and restore, to make the database
 * unreachable without touching the shared cluster. `cut()` destroys every open connection and refuses
 * new ones (the listening port stays, so the service's URL stays valid); `restore()` lets them through
 * again.
 */
export class TcpProxy extends LocalTcpProxy {
  private open = true;

  /** The database becomes unreachable: open connections drop, new ones are closed at once. */
  cut(): void {
    this.open = false;
    this.dropConnections();
  }

  restore(): void {
    this.open = true;
  }

  override async close(): Promise<void> {
    this.open = false;
    await super.close();
  }

  protected accept(client: Socket): void {
    if (!this.open) {
      client.destroy();
      return;
    }
    const { upstream } = this.openUpstream(client);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
