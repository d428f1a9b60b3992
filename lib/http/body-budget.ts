import type { FastifyReply, FastifyRequest } from 'fastify';
import { closeIfOverLimit } from './before-body-checks.js';
import { ServiceBusyError } from './http-errors.js';

/**
 * Bytes of request bodies one route may hold at once, counted by what each request declares
 * (`Content-Length`, or the route's limit for a chunked body) from its arrival until its reply is
 * done: a public route otherwise lets each unauthenticated connection park up to its body limit for
 * `requestMs` (8 connections held 248 MiB of `POST /verify/evidence` for 120 s). Full, a request is
 * refused on arrival — 503 `ERR_SERVICE_BUSY` with `Retry-After` — before any of its body is read.
 * Small bodies fit by the thousand, so the route's throughput is unchanged; bodies declared at most
 * `uncountedBytes` are not counted at all (a route whose usual bodies are small never refuses them).
 */
export class BodyBudget {
  private held = 0;

  constructor(
    readonly bytes: number,
    private readonly retryAfterSeconds = 1,
    private readonly uncountedBytes = 0,
  ) {
    if (!Number.isInteger(bytes) || bytes < 1) {
      throw new RangeError('a body budget is a positive number of bytes');
    }
  }

  /** Bytes held now. */
  get inFlight(): number {
    return this.held;
  }

  /** Holds the request's declared body until its reply is done; throws `ServiceBusyError` when it does not fit. */
  admit(request: FastifyRequest, reply: FastifyReply): void {
    const declared = Number(request.headers['content-length']);
    const bytes = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, request.routeOptions.bodyLimit) : request.routeOptions.bodyLimit;
    if (bytes <= this.uncountedBytes) return;
    if (this.held + bytes > this.bytes) {
      closeIfOverLimit(request, reply);
      throw new ServiceBusyError(`too many request bodies in flight on this route; retry in ${this.retryAfterSeconds} s`, this.retryAfterSeconds);
    }
    this.held += bytes;
    reply.raw.once('close', () => {
      this.held -= bytes;
    });
  }
}
