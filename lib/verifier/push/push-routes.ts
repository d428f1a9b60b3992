import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { clientGoneSignal } from '../../http/client-gone-signal.js';
import { EVIDENCE_BODY_LIMIT } from '../../http/keylime-service.js';
import { BodyBudget } from '../../http/body-budget.js';
import { addRoute, type RouteSpec } from '../../http/route-registration.js';
import type { PushAttestations } from './push-attestations.js';
import {
  AttestationIndexParams,
  CapabilitiesBody,
  EvidenceBody,
  PushAgentParams,
  SessionCreateBody,
  SessionIdParams,
  SessionProofBody,
} from './push-dtos.js';
import { fastAgentParams, fastCapabilitiesBody, fastEvidenceBody, fastIndexParams } from './push-body-fast-path.js';
import { sendJsonApi, sendJsonApiText, sendPushError } from './push-reply.js';
import { POP, type AuthenticatedSession, type PushSessions } from './push-sessions.js';
import { attestationDocument, evidenceAcknowledgedText, sessionResultAttributes } from './push-documents.js';

/** Bodies of the session and capabilities routes: a few KiB; 256 KiB is generous. The default of the routes with a body. */
const SMALL_BODY_LIMIT = 256 * 1024;
/**
 * JSON values a push body may hold, whatever its bytes: the agent's bodies hold a few dozen to a few
 * hundred (the capabilities' subject lists are the most), its logs being strings. Counted before the
 * body is parsed, so 32 MiB of `{}` is refused after 1,024 steps instead of stalling the event loop.
 */
export const PUSH_MAX_JSON_VALUES = 1024;

export interface PushRouteDeps {
  readonly sessions: PushSessions;
  readonly attestations: PushAttestations;
  /** `quote_interval`, sent as `meta.seconds_to_next_attestation`. */
  readonly quoteInterval: number;
  /**
   * Bytes of evidence bodies over `SMALL_BODY_LIMIT` held at once (`pushEvidenceBodyBudget`), counted
   * once the token is checked: an agent's usual evidence is tens of KB and never waits.
   */
  readonly evidenceBodyBudget: number;
}

/**
 * The `/v3.0` push routes (keylime-protocol §10), public like Keylime's (the agent proves itself with
 * its session token, not a client certificate). JSON:API in and out (`application/vnd.api+json`;
 * the body is read as JSON whatever the content type, as on every ironlime route), registered through
 * `addRoute`: params, query (none accepted) and body validated by their DTOs before anything runs (the
 * params and bodies of every attestation behind a fast path that only ever accepts what the DTO accepts,
 * `push-body-fast-path.ts`), errors as JSON:API error objects.
 */
export function registerPushRoutes(app: FastifyInstance, deps: PushRouteDeps): void {
  const route = <P extends object, B extends object, A>(spec: Omit<RouteSpec<P, object, B, A>, 'versioned' | 'errorHandler'>): void =>
    addRoute(
      app,
      { ...(spec.body === undefined ? {} : { bodyLimit: SMALL_BODY_LIMIT }), maxJsonValues: PUSH_MAX_JSON_VALUES, ...spec, url: `/v3.0${spec.url}`, versioned: false, errorHandler: sendPushError },
      { insecureAdmin: false },
    );
  // The agent's token is checked on its headers after its params, before its body is read: a caller
  // without a valid token gets its 401/403 and costs no body reading or parsing (docs/http.md). A slow
  // check is dropped if the client closes first: watched on the reply, since the request's own 'close'
  // (fastify's `request.signal`) also fires once a body has been read, with the client still waiting;
  // the watch is set only when a slow check needs it.
  const authenticate = (request: FastifyRequest, params: PushAgentParams, reply: FastifyReply): Promise<AuthenticatedSession> =>
    deps.sessions.authenticate(params.agent_id, request.headers.authorization, () => clientGoneSignal(reply));

  // The per-address limit is counted on the headers, before the body is read: it is what bounds a
  // stranger, and it must not wait on the body work it limits.
  route({
    method: 'POST',
    url: '/sessions',
    authenticate: async (request) => deps.sessions.admitAddress(request.ip),
    body: SessionCreateBody,
    handler: async ({ body, reply }) => {
      const session = await deps.sessions.open(body);
      return sendJsonApi(reply, 200, {
        data: {
          type: 'session',
          id: session.sessionId,
          attributes: {
            agent_id: session.agentId,
            authentication_requested: [{ ...POP, chosen_parameters: { challenge: session.challenge } }],
            created_at: session.createdAt.toISOString(),
            challenges_expire_at: session.challengesExpireAt.toISOString(),
          },
        },
      });
    },
  });

  route({
    method: 'PATCH',
    url: '/sessions/:session_id',
    params: SessionIdParams,
    body: SessionProofBody,
    handler: async ({ params, body, request, reply }) => {
      const outcome = await deps.sessions.prove(params.session_id, body, clientGoneSignal(reply));
      if (outcome.evaluation === 'fail') {
        // The agent sees only "fail": the operator finds why its node cannot push in the verifier's log.
        request.log.warn({ agentId: outcome.agentId, sessionId: outcome.sessionId, status: outcome.status, reason: outcome.reason }, 'push session proof refused');
        if (outcome.untrustedAk === true) await deps.attestations.failUntrustedAk(outcome.agentId, outcome.reason);
      }
      return sendJsonApi(reply, outcome.evaluation === 'pass' ? 200 : outcome.status, { data: { type: 'session', id: outcome.sessionId, attributes: sessionResultAttributes(outcome) } });
    },
  });

  route({
    method: 'POST',
    url: '/agents/:agent_id/attestations',
    params: { dto: PushAgentParams, fast: fastAgentParams },
    authenticate,
    body: { dto: CapabilitiesBody, fast: fastCapabilitiesBody },
    handler: async ({ params, body, reply }) => {
      const attestation = await deps.attestations.create(params.agent_id, body);
      return sendJsonApi(reply, 201, { data: attestationDocument(attestation) }, { location: `/v3.0/agents/${params.agent_id}/attestations/${attestation.index}` });
    },
  });

  route({
    method: 'PATCH',
    url: '/agents/:agent_id/attestations/:index',
    bodyLimit: EVIDENCE_BODY_LIMIT,
    bodyBudget: new BodyBudget(deps.evidenceBodyBudget, 1, SMALL_BODY_LIMIT),
    params: { dto: AttestationIndexParams, fast: fastIndexParams },
    authenticate,
    body: { dto: EvidenceBody, fast: fastEvidenceBody },
    handler: async ({ params, body, authenticated, reply }) => {
      const attestation = await deps.attestations.submit(params.agent_id, params.index, body, authenticated);
      return sendJsonApiText(reply, 202, evidenceAcknowledgedText(attestation, body, deps.quoteInterval));
    },
  });

  route({
    method: 'GET',
    url: '/agents/:agent_id/attestations',
    params: PushAgentParams,
    authenticate,
    handler: async ({ params, reply }) => sendJsonApi(reply, 200, { data: (await deps.attestations.list(params.agent_id)).map(attestationDocument) }),
  });

  // Keylime 7.14 answers a read of one attestation with 201 (spec §10.5a); so do we.
  route({
    method: 'GET',
    url: '/agents/:agent_id/attestations/:index',
    params: AttestationIndexParams,
    authenticate,
    handler: async ({ params, reply }) => sendJsonApi(reply, 201, { data: attestationDocument(await deps.attestations.read(params.agent_id, params.index)) }),
  });
}
