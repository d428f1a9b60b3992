import type { FastifyReply } from 'fastify';

/**
 * Keylime's reply envelope for every v1/v2 endpoint of registrar, verifier and agent
 * (spec §0.1; `keylime/web_util.py: echo_json_response`): `code` repeats the HTTP status, `status` is a
 * short text ("Success" on 200), `results` the payload (`{}` on errors).
 */
export interface KeylimeEnvelope<R = Record<string, unknown>> {
  readonly code: number;
  readonly status: string;
  readonly results: R;
}

/** Sends `{code, status, results}` with HTTP status `code`. */
export function sendEnvelope<R extends object>(reply: FastifyReply, code: number, status: string, results: R): FastifyReply {
  const body: KeylimeEnvelope<R> = { code, status, results };
  return reply.code(code).type('application/json; charset=utf-8').send(body);
}

/** 200 with `results`. */
export function ok<R extends object>(reply: FastifyReply, results: R, status = 'Success'): FastifyReply {
  return sendEnvelope(reply, 200, status, results);
}

/**
 * The text of a 200 envelope whose `results` is already JSON text (made off the event loop, e.g. by a
 * worker thread): written around it instead of parsed and serialised again.
 */
export function okEnvelopeText(resultsJson: string, status = 'Success'): string {
  return `{"code":200,"status":${JSON.stringify(status)},"results":${resultsJson}}`;
}

/** 200 with `results` given as JSON text (see `okEnvelopeText`). */
export function okJsonText(reply: FastifyReply, resultsJson: string): FastifyReply {
  return reply.code(200).type('application/json; charset=utf-8').send(okEnvelopeText(resultsJson));
}

/** 201 with `results` (Keylime's policy stores answer POST/PUT with 201). */
export function created<R extends object>(reply: FastifyReply, results: R, status = 'Created'): FastifyReply {
  return sendEnvelope(reply, 201, status, results);
}

/** 202 with `results` (the verifier's DELETE of an agent that is still being polled). */
export function accepted<R extends object>(reply: FastifyReply, results: R, status = 'Accepted'): FastifyReply {
  return sendEnvelope(reply, 202, status, results);
}

/** 204 without a body: HTTP forbids one (RFC 9110 §15.3.5), so no envelope either. */
export function noContent(reply: FastifyReply): FastifyReply {
  return reply.code(204).send();
}
