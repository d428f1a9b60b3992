import type { FastifyInstance, FastifyReply } from 'fastify';
import { IronlimeError } from '../../interfaces/errors.js';
import { errorReply } from '../http/error-envelope.js';
import { RequestValidationError } from '../http/http-errors.js';
import { KBS_ERROR_STATUS, KbsError, problemBody, type KbsErrorType } from './kbs-errors.js';

/**
 * Installs the KBS error replies on the `/kbs/v0` scope: every refusal is an RFC 7807 body
 * `{type, detail}` (Content-Type `application/problem+json`), never Keylime's envelope. The mapping is
 * the one place a KBS status is chosen:
 * - `KbsError`: its type and status;
 * - the shell's own errors (DTO validation, bad JSON, missing client certificate, unknown route) become
 *   the KBS types that mean the same (`SerdeError`, `AdminAuth`, `InvalidRequestPath`), with the status
 *   KBS uses — except a body over the limit, which stays 413, and a malformed admin body, 400 (our own
 *   routes, no KBS client), whether the DTO or the service (`SerdeError`, e.g. a policy that does not
 *   compile) finds it. A malformed path parameter or any query string is `InvalidRequestPath`
 *   404, as trustee answers a bad resource path: a kbs_protocol client stops at a 404, where a 401
 *   would make it attest again and retry;
 * - anything else (database down, a bug) is a bare 500 `InternalError`, its detail only in the log.
 */
export function installKbsProblemHandlers(scope: FastifyInstance): void {
  scope.setErrorHandler((error, request, reply) => {
    const problem = toProblem(error, request.routeOptions.bodyLimit, request.routeOptions.url?.includes('/admin/') === true);
    if (problem.status >= 500) {
      request.log.error({ err: error }, 'kbs request failed');
    } else {
      request.log.info({ status: problem.status, type: problem.type, detail: problem.detail }, 'kbs request refused');
    }
    return sendProblem(reply, problem.status, problem.type, problem.detail);
  });
  scope.setNotFoundHandler((_request, reply) => sendProblem(reply, 404, 'InvalidRequestPath', 'no such KBS path'));
}

/** Seconds a client is asked to wait before asking again when the verifier could not be asked (RFC 9110 §10.2.3). */
const VERIFIER_RETRY_AFTER_SECONDS = 5;

export function sendProblem(reply: FastifyReply, status: number, type: KbsErrorType, detail: string): FastifyReply {
  if (type === 'VerifierUnavailable') {
    void reply.header('retry-after', String(VERIFIER_RETRY_AFTER_SECONDS));
  }
  return reply.code(status).header('content-type', 'application/problem+json').send(problemBody(type, detail));
}

interface Problem {
  readonly status: number;
  readonly type: KbsErrorType;
  readonly detail: string;
}

function toProblem(error: unknown, bodyLimit: number, admin: boolean): Problem {
  if (error instanceof KbsError) {
    // A malformed admin body found past the DTO (a node's policy that does not compile): 400 as the DTO's.
    const status = admin && error.type === 'SerdeError' ? 400 : error.status;
    return { status, type: error.type, detail: error.message };
  }
  const { code, status } = errorReply(error, bodyLimit);
  const typed = error instanceof IronlimeError ? error.code : undefined;
  if (code === 413) {
    return { status: 413, type: 'SerdeError', detail: status };
  }
  if (error instanceof RequestValidationError && /^(params|query)\b/.test(error.location)) {
    return { status: KBS_ERROR_STATUS.InvalidRequestPath, type: 'InvalidRequestPath', detail: status };
  }
  if (admin && error instanceof RequestValidationError) {
    return { status: 400, type: 'SerdeError', detail: status };
  }
  if (typed === 'ERR_FORBIDDEN') {
    return { status: KBS_ERROR_STATUS.AdminAuth, type: 'AdminAuth', detail: status };
  }
  if (code === 404) {
    return { status: 404, type: 'InvalidRequestPath', detail: status };
  }
  if (code >= 400 && code < 500) {
    return { status: KBS_ERROR_STATUS.SerdeError, type: 'SerdeError', detail: status };
  }
  return { status: 500, type: 'InternalError', detail: 'internal error' };
}
