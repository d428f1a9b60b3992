import type { DependencyContainer } from 'tsyringe';
import { serverVersionResults } from '../http/api-version.js';
import { ok } from '../http/envelope.js';
import type { KeylimeService } from '../http/keylime-service.js';
import { ActivateAgentBody, AgentIdParams, HostProofBody, IdentityModeBody, RegisterAgentBody } from './registrar-dtos.js';
import { RegistrarService } from './registrar-service.js';

/**
 * The registrar's route table (Keylime `keylime/web/registrar_server.py`, spec §1.1), declared on one
 * service. Both listeners get the same table: on the plain-HTTP port no client certificate can ever be
 * verified, so the admin routes there always answer 403 "client certificate required"; on the TLS
 * port they need a client certificate issued by the registrar's CA.
 */
export function registerRegistrarRoutes(service: KeylimeService, container: DependencyContainer): void {
  const registrar = (): RegistrarService => container.resolve(RegistrarService);

  service.route({
    method: 'GET',
    url: '/version',
    versioned: false,
    handler: ({ reply }) => ok(reply, serverVersionResults(service.apiVersions)),
  });

  service.route({
    method: 'POST',
    url: '/agents/:agent_id',
    params: AgentIdParams,
    body: RegisterAgentBody,
    handler: async ({ params, body, reply }) => ok(reply, await registrar().register(params.agent_id, body)),
  });

  // The Rust agent activates with PUT /agents/{id}; the newer router also has …/activate (PUT and POST).
  for (const [method, url] of [
    ['PUT', '/agents/:agent_id'],
    ['PUT', '/agents/:agent_id/activate'],
    ['POST', '/agents/:agent_id/activate'],
  ] as const) {
    service.route({
      method,
      url,
      params: AgentIdParams,
      body: ActivateAgentBody,
      handler: async ({ params, body, reply }) => {
        await registrar().activate(params.agent_id, body.auth_tag);
        return ok(reply, {});
      },
    });
  }

  // ironlime (docs/identity.md): an id-secret host answers its registration nonce.
  service.route({
    method: 'PUT',
    url: '/agents/:agent_id/host-proof',
    params: AgentIdParams,
    body: HostProofBody,
    handler: async ({ params, body, reply }) => {
      await registrar().activateHostProof(params.agent_id, body.host_proof);
      return ok(reply, {});
    },
  });

  service.route({
    method: 'GET',
    url: '/agents/:agent_id/identity',
    admin: true,
    params: AgentIdParams,
    handler: async ({ params, reply }) => ok(reply, await registrar().identity(params.agent_id)),
  });

  service.route({
    method: 'PUT',
    url: '/agents/:agent_id/identity-mode',
    admin: true,
    params: AgentIdParams,
    body: IdentityModeBody,
    handler: async ({ params, body, reply }) => {
      await registrar().allowModeChange(params.agent_id, body.identity_mode);
      return ok(reply, {});
    },
  });

  service.route({
    method: 'GET',
    url: '/agents',
    admin: true,
    handler: async ({ reply }) => ok(reply, await registrar().list()),
  });

  service.route({
    method: 'GET',
    url: '/agents/:agent_id',
    admin: true,
    params: AgentIdParams,
    handler: async ({ params, reply }) => ok(reply, await registrar().show(params.agent_id)),
  });

  service.route({
    method: 'DELETE',
    url: '/agents/:agent_id',
    admin: true,
    params: AgentIdParams,
    handler: async ({ params, reply }) => {
      await registrar().delete(params.agent_id);
      return ok(reply, {});
    },
  });
}
