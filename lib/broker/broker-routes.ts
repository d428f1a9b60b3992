import type { KeyObject } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { addRoute, type RouteSpec } from '../http/route-registration.js';
import { NotFoundError } from '../http/http-errors.js';
import { RevocationEnvelopeBody } from '../revocation/revocation-receiver.js';
import { checkRevocationEnvelope } from '../revocation/revocation-signature.js';
import { adminActor } from './broker-audit.js';
import type { BrokerService } from './broker-service.js';
import { KbsError } from './kbs-errors.js';
import {
  AgentIdParams,
  PutNodeBody,
  PutResourceBody,
  ReinstateQuery,
  ResourcePathParams,
  RevokeBody,
} from './kbs-dtos.js';
import { installKbsProblemHandlers } from './kbs-problem-handler.js';
import { KBS_PREFIX, KBS_SESSION_COOKIE } from './kbs-wire.js';
import { ATTEST_BODY_LIMIT, ATTESTATION, attestationInput, AUTH_BODY_LIMIT, AUTH_REQUEST, RESOURCE_PATH } from './kbs-request-checks.js';

/**
 * Body limit of `POST /revocation`, public: a signed Keylime revocation envelope is a message of at
 * most ~1 MiB (`RevocationEnvelopeBody`) and a signature of at most 8 KiB.
 */
const REVOCATION_BODY_LIMIT = 2 * 1024 * 1024;

export interface BrokerRouteSettings {
  /** The verifier's revocation key: enables `POST /revocation` for signed Keylime revocation messages. */
  readonly revocationKey?: KeyObject;
  readonly insecureAdmin: boolean;
  readonly sessionTimeoutSeconds: number;
  /** The service's body limit (`BrokerConfig.bodyLimit`): the KBS routes' own limits never exceed it. */
  readonly bodyLimit: number;
}

/**
 * The KBS API under `/kbs/v0` in its own fastify scope, so its errors are RFC 7807 bodies while the
 * rest of the service shell (TLS, body limits, DTO validation, admin client certificates) is shared:
 * `POST /auth`, `POST /attest`, `GET /resource/<repository>/<type>/<tag>`, and the mTLS admin routes
 * for nodes, resources and revocations (docs/broker.md).
 */
export async function registerBrokerRoutes(app: FastifyInstance, broker: BrokerService, settings: BrokerRouteSettings): Promise<void> {
  await app.register(
    async (scope) => {
      installKbsProblemHandlers(scope);
      const route = <P extends object, Q extends object, B extends object>(spec: RouteSpec<P, Q, B>): void =>
        addRoute(scope, { ...spec, versioned: false }, { insecureAdmin: settings.insecureAdmin });

      // The three routes of every exchange and fetch: their DTOs behind a fast path (kbs-request-checks).
      route({
        method: 'POST',
        url: '/auth',
        body: AUTH_REQUEST,
        bodyLimit: Math.min(settings.bodyLimit, AUTH_BODY_LIMIT),
        handler: ({ body, reply }) => {
          const { cookie: value, challenge } = broker.auth(body);
          const cookie = `${KBS_SESSION_COOKIE}=${value}; Path=${KBS_PREFIX}; Max-Age=${settings.sessionTimeoutSeconds}; HttpOnly; Secure; SameSite=Strict`;
          return reply.header('set-cookie', cookie).send(challenge);
        },
      });

      route({
        method: 'POST',
        url: '/attest',
        body: ATTESTATION,
        bodyLimit: Math.min(settings.bodyLimit, ATTEST_BODY_LIMIT),
        handler: async ({ body, request, reply }) => {
          // The parsed body itself: the report data is the hash of runtime-data exactly as sent.
          const { runtimeData, evidence, additionalEvidence } = attestationInput(request.body, body);
          const token = await broker.attest(sessionCookie(request), runtimeData, evidence, additionalEvidence);
          return reply.send({ token });
        },
      });

      route({
        method: 'GET',
        url: '/resource/:repository/:type/:tag',
        params: RESOURCE_PATH,
        handler: async ({ params, request, reply }) => {
          const jwe = await broker.resource(params, { cookie: sessionCookie(request), bearer: bearerToken(request) });
          return reply.send(jwe);
        },
      });

      route({
        method: 'PUT',
        url: '/admin/nodes/:agent_id',
        admin: true,
        params: AgentIdParams,
        body: PutNodeBody,
        handler: async ({ params, body: node, clientCertificate, reply }) => {
          const { agent_id: agentId } = params;
          await broker.putNode({
            agentId,
            akTpm: node.ak_tpm ?? null,
            tpmPolicy: node.tpm_policy ?? '{}',
            runtimePolicy: node.runtime_policy ?? null,
            mbRefstate: node.mb_refstate ?? null,
            groups: node.groups ?? [],
          }, adminActor(clientCertificate));
          return noContent(reply);
        },
      });

      route({
        method: 'DELETE',
        url: '/admin/nodes/:agent_id',
        admin: true,
        params: AgentIdParams,
        handler: async ({ params, clientCertificate, reply }) => found(await broker.deleteNode(params.agent_id, adminActor(clientCertificate)), reply),
      });

      route({
        method: 'PUT',
        url: '/admin/resources/:repository/:type/:tag',
        admin: true,
        params: ResourcePathParams,
        body: PutResourceBody,
        handler: async ({ params, body: resource, clientCertificate, reply }) => {
          await broker.putResource(params, new Uint8Array(Buffer.from(resource.data, 'base64')), {
            agents: resource.policy.agents,
            groups: resource.policy.groups,
            allow_tokens: resource.policy.allow_tokens ?? true,
            verifier_standing: resource.policy.verifier_standing ?? false,
            ...(resource.policy.required_claims === undefined ? {} : { required_claims: resource.policy.required_claims }),
          }, adminActor(clientCertificate));
          return noContent(reply);
        },
      });

      route({
        method: 'DELETE',
        url: '/admin/resources/:repository/:type/:tag',
        admin: true,
        params: ResourcePathParams,
        handler: async ({ params, clientCertificate, reply }) => found(await broker.deleteResource(params, adminActor(clientCertificate)), reply),
      });

      route({
        method: 'POST',
        url: '/admin/revocations/:agent_id',
        admin: true,
        params: AgentIdParams,
        body: RevokeBody,
        handler: async ({ params, body, clientCertificate, reply }) => {
          await broker.revocations.revoke(params.agent_id, body.reason ?? 'revoked by an administrator', adminActor(clientCertificate));
          return noContent(reply);
        },
      });

      route({
        method: 'GET',
        url: '/admin/revocations/:agent_id',
        admin: true,
        params: AgentIdParams,
        handler: async ({ params, reply }) => {
          const version = await broker.revocations.revocationInForce(params.agent_id);
          return reply.send({ in_force: version !== null, version });
        },
      });

      route({
        method: 'POST',
        url: '/revocation',
        body: RevocationEnvelopeBody,
        bodyLimit: Math.min(settings.bodyLimit, REVOCATION_BODY_LIMIT),
        // Public: without a revocation certificate the body is not even read.
        authenticate: async () => {
          if (settings.revocationKey === undefined) {
            throw new KbsError('AdminAuth', 'this broker accepts no revocation messages (no revocation certificate configured)');
          }
          return undefined;
        },
        handler: async ({ body, reply }) => {
          const check = checkRevocationEnvelope(body, settings.revocationKey as KeyObject);
          if (!check.ok) {
            throw new KbsError('AdminAuth', check.reason);
          }
          // 204 also when ignored as a message applied before: delivered, nothing left for the sender to retry.
          await broker.revocations.revokeByMessage(check.message);
          return noContent(reply);
        },
      });

      route({
        method: 'DELETE',
        url: '/admin/revocations/:agent_id',
        admin: true,
        params: AgentIdParams,
        query: ReinstateQuery,
        handler: async ({ params, query, clientCertificate, reply }) => {
          const outcome = await broker.revocations.reinstate(params.agent_id, query.version, adminActor(clientCertificate));
          if (outcome === 'revoked again') {
            throw new KbsError('AdminConflict', `node ${params.agent_id} was revoked again during this reinstatement: it stays revoked`);
          }
          return found(outcome === 'reinstated', reply);
        },
      });
    },
    { prefix: KBS_PREFIX },
  );
}

/** The `kbs-session-id` cookie, if the request carries one of a plausible form. */
export function sessionCookie(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) {
    return undefined;
  }
  for (const part of header.split(';')) {
    const [name, value] = part.trim().split('=', 2);
    if (name === KBS_SESSION_COOKIE && value !== undefined && /^[A-Za-z0-9_-]{1,64}$/.test(value)) {
      return value;
    }
  }
  return undefined;
}

/** Longest bearer token taken (an EAR token of the broker's issuer is a few kilobytes). */
const MAX_BEARER_CHARS = 16_384;

/**
 * The token of an `Authorization: Bearer` header; undefined when there is no such header (another
 * scheme is not a credential here). A bearer token of another form is refused as a token, not taken
 * for none: "no token sent" (`TokenNotFound`) would hide what is wrong with the one that was.
 */
function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined || !header.startsWith('Bearer ')) {
    return undefined;
  }
  const token = header.slice('Bearer '.length);
  if (token.length > MAX_BEARER_CHARS) {
    throw new KbsError('TokenVerifierError', `the bearer token is longer than ${MAX_BEARER_CHARS} characters`);
  }
  if (!/^[A-Za-z0-9._~+/=-]+$/.test(token)) {
    throw new KbsError('TokenVerifierError', 'the bearer token is not a token (RFC 6750 b64token characters only)');
  }
  return token;
}

function noContent(reply: FastifyReply): FastifyReply {
  return reply.code(204).send();
}

function found(deleted: boolean, reply: FastifyReply): FastifyReply {
  if (!deleted) {
    throw new NotFoundError('no such object');
  }
  return noContent(reply);
}
