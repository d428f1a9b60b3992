import { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { createHttpsAgentPair, type KeylimeClientTls } from './keylime-client-tls.js';
import { ReusedConnectionWatch } from './reused-connection-watch.js';

/** The axios agent option of a request (`httpAgent` or `httpsAgent`). */
export type AgentOption = { readonly httpAgent: HttpAgent } | { readonly httpsAgent: HttpsAgent };

/**
 * A Keylime client's connections: a pool of kept-alive ones, whose idle connections are closed after
 * `idleMs` or one second before the server's announced keep-alive timeout, whichever is sooner (so the
 * client, not the server, ends them: node's agent reads `Keep-Alive: timeout=N` only once it has a
 * timeout of its own); and, for a request sent once more after a kept-alive connection was closed
 * under it, a fresh connection each time: the other pooled ones may have been closed by the same
 * server timeout.
 */
export interface ClientConnections {
  readonly pooled: AgentOption;
  readonly fresh: AgentOption;
  /** Whether a failure on a pooled connection may be sent again (`ReusedConnectionWatch`). */
  readonly watch: ReusedConnectionWatch;
  /** Whether `destroy` ran: the client is closed, and a reset after it is its own, not a stale connection. */
  readonly destroyed: boolean;
  destroy(): void;
}

/** The connections for an `http:` or `https:` (with `tls`) base URL. */
export function createClientConnections(protocol: 'http:' | 'https:', tls: KeylimeClientTls, idleMs: number): ClientConnections {
  if (protocol === 'https:') {
    const { pooled, fresh } = createHttpsAgentPair(tls, idleMs);
    return connectionsOf(pooled, fresh, (agent) => ({ httpsAgent: agent }));
  }
  return connectionsOf(new HttpAgent({ keepAlive: true, timeout: idleMs }), new HttpAgent({ keepAlive: false }), (agent) => ({ httpAgent: agent }));
}

function connectionsOf<A extends HttpAgent>(pooled: A, fresh: A, asOption: (agent: A) => AgentOption): ClientConnections {
  let destroyed = false;
  return {
    pooled: asOption(pooled),
    fresh: asOption(fresh),
    watch: new ReusedConnectionWatch(pooled),
    get destroyed() {
      return destroyed;
    },
    destroy: () => {
      destroyed = true;
      pooled.destroy();
      fresh.destroy();
    },
  };
}
