import type { Socket } from 'node:net';
import { LocalTcpProxy, type ProxiedConnection } from '../../helpers/local-tcp-proxy.js';

/**
 * A TCP proxy to PostgreSQL that a test can turn into a black hole: while dark it forwards nothing in
 * either direction but closes nothing either, so both ends see a silent peer, as behind a firewall
 * that drops packets or after a pulled cable (the TCP proxy in test/verifier/helpers instead cuts
 * connections, which the client notices at once). New connections are accepted and held silent too.
 * `resume()` forwards again, including what was held back.
 */
export class BlackHoleProxy extends LocalTcpProxy {
  private dark = false;

  /** Stops forwarding; sockets stay open and unread. */
  blackHole(): void {
    this.dark = true;
    for (const flow of this.connections) {
      BlackHoleProxy.hold(flow);
    }
  }

  /** Forwards again; a no-op when already forwarding (piping twice would duplicate every byte). */
  resume(): void {
    if (!this.dark) {
      return;
    }
    this.dark = false;
    for (const flow of this.connections) {
      BlackHoleProxy.forward(flow);
    }
  }

  protected accept(client: Socket): void {
    const flow = this.openUpstream(client);
    if (this.dark) {
      BlackHoleProxy.hold(flow);
    } else {
      BlackHoleProxy.forward(flow);
    }
  }

  private static forward({ client, upstream }: ProxiedConnection): void {
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private static hold({ client, upstream }: ProxiedConnection): void {
    client.unpipe(upstream);
    upstream.unpipe(client);
    client.pause();
    upstream.pause();
  }
}
