import type { FastifyRequest } from 'fastify';
import type { DependencyContainer } from 'tsyringe';
import { serverVersionResults } from '../http/api-version.js';
import { accepted, created, noContent, ok, sendEnvelope } from '../http/envelope.js';
import type { KeylimeService } from '../http/keylime-service.js';
import { checkMbPolicy, checkRuntimePolicy } from './enrolment-check.js';
import { registerEvidenceRoute } from './evidence-route.js';
import {
  AddAgentBody,
  AgentIdParams,
  HistoryQuery,
  ListAgentsQuery,
  MbPolicyBody,
  PolicyNameParams,
  RuntimePolicyBody,
} from './verifier-dtos.js';
import { IdentityQuery } from './verify-route-dtos.js';
import { PolicyStoreService } from './policy-store-service.js';
import type { PolicyScope } from './verifier-policy-repository.js';
import { VerifierService } from './verifier-service.js';
import { VerifierMetrics } from './verifier-metrics.js';
import { principalOf } from '../auth/request-principal.js';
import { changeRecord } from './admin-change-record.js';
import { requestTenant, seesTenant, visibleTenant } from './verifier-access.js';

/**
 * The verifier's route table (Keylime `keylime/web/verifier_server.py` v2 routes; spec §4). Public:
 * `/version`, `/health` (ironlime: 503 while verdicts cannot be stored), `/metrics` (ironlime: Prometheus text), `verify/identity` (from API 2.2) and `verify/evidence` (from 2.4). Everything else is
 * admin: a client certificate verified against the verifier's CA. `GET /agents/{id}/history` is an
 * ironlime extension (the append-only record of every round).
 */
export function registerVerifierRoutes(service: KeylimeService, container: DependencyContainer): void {
  const verifier = (): VerifierService => container.resolve(VerifierService);

  service.route({
    method: 'GET',
    url: '/version',
    versioned: false,
    handler: ({ reply }) => ok(reply, serverVersionResults(service.apiVersions)),
  });

  service.route({
    method: 'GET',
    url: '/health',
    versioned: false,
    handler: async ({ reply }) => {
      const health = await verifier().readiness();
      return health.ready ? ok(reply, health) : sendEnvelope(reply, 503, 'Service Unavailable', health);
    },
  });

  service.route({
    method: 'GET',
    url: '/metrics',
    versioned: false,
    handler: async ({ reply }) => {
      const { contentType, text } = await container.resolve(VerifierMetrics).exposition();
      return reply.code(200).type(contentType).send(text);
    },
  });

  service.route({
    method: 'POST',
    url: '/agents/:agent_id',
    admin: true,
    params: AgentIdParams,
    body: AddAgentBody,
    handler: async ({ params, body, request, reply }) => {
      await verifier().enrol(params.agent_id, body, requestTenant(request), changeRecord(request, 200), seesTenant(request));
      return ok(reply, {});
    },
  });

  service.route({
    method: 'GET',
    url: '/agents/:agent_id',
    admin: true,
    params: AgentIdParams,
    handler: async ({ params, request, reply }) => ok(reply, await verifier().status(params.agent_id, seesTenant(request))),
  });

  service.route({
    method: 'GET',
    url: '/agents',
    admin: true,
    query: ListAgentsQuery,
    handler: async ({ query, request, reply }) =>
      ok(reply, await verifier().list(query.verifier, query.bulk !== undefined, visibleTenant(principalOf(request)))),
  });

  service.route({
    method: 'DELETE',
    url: '/agents/:agent_id',
    admin: true,
    params: AgentIdParams,
    handler: async ({ params, request, reply }) => {
      const deleted = changeRecord(request, 200);
      const terminating = changeRecord(request, 202);
      const outcome = await verifier().delete(params.agent_id, (trx, done) => (done === 'deleted' ? deleted(trx) : terminating(trx)), seesTenant(request));
      return outcome === 'deleted' ? ok(reply, {}) : accepted(reply, {});
    },
  });

  service.route({
    method: 'PUT',
    url: '/agents/:agent_id/reactivate',
    admin: true,
    params: AgentIdParams,
    handler: async ({ params, request, reply }) => {
      await verifier().reactivate(params.agent_id, changeRecord(request, 200), seesTenant(request));
      return ok(reply, {});
    },
  });

  service.route({
    method: 'PUT',
    url: '/agents/:agent_id/stop',
    admin: true,
    params: AgentIdParams,
    handler: async ({ params, request, reply }) => {
      await verifier().stop(params.agent_id, changeRecord(request, 200), seesTenant(request));
      return ok(reply, {});
    },
  });

  service.route({
    method: 'GET',
    url: '/agents/:agent_id/history',
    admin: true,
    params: AgentIdParams,
    query: HistoryQuery,
    handler: async ({ params, query, request, reply }) => {
      const page = await verifier().history(params.agent_id, query.limit ?? 100, visibleTenant(principalOf(request)), query.before);
      return ok(reply, { history: page.rows, ...(page.nextBefore === undefined ? {} : { next_before: page.nextBefore }) });
    },
  });

  const stores = (): PolicyStoreService => container.resolve(PolicyStoreService);
  registerRuntimePolicyRoutes(service, stores);
  registerMbPolicyRoutes(service, stores);

  service.route({
    method: 'GET',
    url: '/verify/identity',
    minVersion: '2.2',
    query: IdentityQuery,
    handler: async ({ query, reply }) => ok(reply, await verifier().verifyIdentity(query)),
  });

  registerEvidenceRoute(service, container);
}

function registerRuntimePolicyRoutes(service: KeylimeService, stores: () => PolicyStoreService): void {
  service.route({
    method: 'GET',
    url: '/allowlists',
    admin: true,
    handler: async ({ request, reply }) => ok(reply, { 'runtimepolicy names': await stores().listRuntimePolicies(scopeOf(request)) }),
  });
  service.route({
    method: 'GET',
    url: '/allowlists/:name',
    admin: true,
    params: PolicyNameParams,
    handler: async ({ params, request, reply }) => {
      const stored = await stores().showRuntimePolicy(params.name, scopeOf(request));
      return ok(reply, { name: stored.name, tpm_policy: stored.tpmPolicy, runtime_policy: stored.runtimePolicy, agents_using: stored.agentsUsing });
    },
  });
  service.route({
    method: 'POST',
    url: '/allowlists/:name',
    admin: true,
    params: PolicyNameParams,
    body: RuntimePolicyBody,
    handler: async ({ params, body, request, reply }) => {
      await stores().addRuntimePolicy(checkRuntimePolicy(params.name, body, 'body'), requestTenant(request), changeRecord(request, 201));
      return created(reply, {});
    },
  });
  service.route({
    method: 'PUT',
    url: '/allowlists/:name',
    admin: true,
    params: PolicyNameParams,
    body: RuntimePolicyBody,
    handler: async ({ params, body, request, reply }) => {
      await stores().updateRuntimePolicy(checkRuntimePolicy(params.name, body, 'body'), scopeOf(request), changeRecord(request, 201));
      return created(reply, {});
    },
  });
  service.route({
    method: 'DELETE',
    url: '/allowlists/:name',
    admin: true,
    params: PolicyNameParams,
    handler: async ({ params, request, reply }) => {
      await stores().deleteRuntimePolicy(params.name, scopeOf(request), changeRecord(request, 204));
      return noContent(reply);
    },
  });
}

function registerMbPolicyRoutes(service: KeylimeService, stores: () => PolicyStoreService): void {
  const since = { minVersion: '2.3' } as const;
  service.route({
    method: 'GET',
    url: '/mbpolicies',
    admin: true,
    ...since,
    handler: async ({ request, reply }) => ok(reply, { 'mbpolicy names': await stores().listMbPolicies(scopeOf(request)) }),
  });
  service.route({
    method: 'GET',
    url: '/mbpolicies/:name',
    admin: true,
    ...since,
    params: PolicyNameParams,
    handler: async ({ params, request, reply }) => {
      const stored = await stores().showMbPolicy(params.name, scopeOf(request));
      return ok(reply, { name: stored.name, mb_policy: stored.mbPolicy, agents_using: stored.agentsUsing });
    },
  });
  service.route({
    method: 'POST',
    url: '/mbpolicies/:name',
    admin: true,
    ...since,
    params: PolicyNameParams,
    body: MbPolicyBody,
    handler: async ({ params, body, request, reply }) => {
      await stores().addMbPolicy(checkMbPolicy(params.name, body.mb_policy), requestTenant(request), changeRecord(request, 201));
      return created(reply, {});
    },
  });
  service.route({
    method: 'PUT',
    url: '/mbpolicies/:name',
    admin: true,
    ...since,
    params: PolicyNameParams,
    body: MbPolicyBody,
    handler: async ({ params, body, request, reply }) => {
      await stores().updateMbPolicy(checkMbPolicy(params.name, body.mb_policy), scopeOf(request), changeRecord(request, 201));
      return created(reply, {});
    },
  });
  service.route({
    method: 'DELETE',
    url: '/mbpolicies/:name',
    admin: true,
    ...since,
    params: PolicyNameParams,
    handler: async ({ params, request, reply }) => {
      await stores().deleteMbPolicy(params.name, scopeOf(request), changeRecord(request, 204));
      return noContent(reply);
    },
  });
}

/**
 * The tenant whose named policies a request sees, lists, changes and deletes (a token's), or
 * undefined for every tenant's (a client certificate). It creates them as `requestTenant`'s.
 */
function scopeOf(request: FastifyRequest): PolicyScope {
  return visibleTenant(principalOf(request));
}
