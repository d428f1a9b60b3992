import type { FastifyBaseLogger } from 'fastify';
import { agentApiVersionPolicy } from '../http/api-version.js';
import { createService, type KeylimeService } from '../http/keylime-service.js';
import { registerLivenessRoutes, type HostLivenessContext } from './agent-liveness-routes.js';
import { registerAgentRoutes, type AgentApiContext } from './agent-routes.js';
import { logRefusedClients } from './refused-client-log.js';

export interface AgentTls {
  /** The agent's self-signed server certificate and key (PEM). */
  readonly cert: string;
  readonly key: string;
  /** PEM of the CA client certificates must chain to (Keylime `trusted_client_ca`). */
  readonly clientCa: string;
}

/**
 * The agent's HTTPS service with its routes: mTLS on every route (spec §0.3: a peer without a client
 * certificate from `clientCa` fails the handshake), the Rust agent's API versions and error texts.
 * Not listening yet; `inject` works on it for in-process tests.
 */
export function createAgentService(context: AgentApiContext, tls: AgentTls, logger?: FastifyBaseLogger): KeylimeService {
  const service = createMtlsAgentService(tls, logger);
  registerAgentRoutes(service, context);
  return service;
}

/** The same service for an agent without a TPM (docs/identity.md): only the liveness routes. */
export function createHostAgentService(host: HostLivenessContext, tls: AgentTls, logger?: FastifyBaseLogger): KeylimeService {
  const service = createMtlsAgentService(tls, logger);
  registerLivenessRoutes(service, host);
  return service;
}

/** The mTLS service; every client it refuses is logged at warn (`logRefusedClients`). */
function createMtlsAgentService(tls: AgentTls, logger: FastifyBaseLogger | undefined): KeylimeService {
  const service = createService({
    name: 'agent',
    apiVersions: agentApiVersionPolicy(),
    tls: { cert: tls.cert, key: tls.key, ca: tls.clientCa, requestClientCert: true, requireClientCert: 'all' },
    ...(logger === undefined ? {} : { logger }),
  });
  if (logger !== undefined) logRefusedClients(service, logger);
  return service;
}
