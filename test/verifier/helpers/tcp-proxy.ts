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

  /** Whether the database is cut away now. */
  get isCut(): boolean {
    return !this.open;
  }

  protected accept(client: Socket): void {
    if (!this.open) {
      client.destroy();
      return;
    }
    this.relay(client, this.openUpstream(client).upstream);
  }

  /** Carries a let-through connection's bytes both ways (a subclass may read them on the way). */
  protected relay(client: Socket, upstream: Socket): void {
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
