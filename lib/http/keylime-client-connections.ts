import { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { createFreshConnectionHttpsAgent, createHttpsAgent, type KeylimeClientTls } from './keylime-client-tls.js';
import { ReusedConnectionWatch } from './reused-connection-watch.js';

/** The axios agent option of a request (`httpAgent` or `httpsAgent`). */
export type AgentOption = { readonly httpAgent: HttpAgent } | { readonly httpsAgent: HttpsAgent };

/**
 * A Keylime client's connections: a pool of kept-alive ones and, for a request sent once more after a
 * kept-alive connection was closed under it, a fresh connection each time: the other pooled ones may have been closed by the same
 * server timeout.
 */
export interface ClientConnections {
  readonly pooled: AgentOption;
  readonly fresh: AgentOption;
  /** Whether a failure on a pooled connection may be sent again (`ReusedConnectionWatch`). */
  readonly watch: ReusedConnectionWatch;
  destroy(): void;
}

/** The connections for an `http:` or `https:` (with `tls`) base URL. */
export function createClientConnections(protocol: 'http:' | 'https:', tls: KeylimeClientTls): ClientConnections {
  if (protocol === 'https:') {
    return connectionsOf(createHttpsAgent(tls), createFreshConnectionHttpsAgent(tls), (agent) => ({ httpsAgent: agent }));
  }
  return connectionsOf(new HttpAgent({ keepAlive: true }), new HttpAgent({ keepAlive: false }), (agent) => ({ httpAgent: agent }));
}

function connectionsOf<A extends HttpAgent>(pooled: A, fresh: A, asOption: (agent: A) => AgentOption): ClientConnections {
  return {
    pooled: asOption(pooled),
    fresh: asOption(fresh),
    watch: new ReusedConnectionWatch(pooled),
    destroy: () => {
      pooled.destroy();
      fresh.destroy();
    },
  };
}
