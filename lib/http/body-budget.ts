import type { FastifyReply, FastifyRequest } from 'fastify';
import { closeIfOverLimit } from './before-body-checks.js';
import { ServiceBusyError } from './http-errors.js';

/**
 * Bytes of request bodies one route may hold at once, counted by what each request declares
 * (`Content-Length`, or the route's limit for a chunked body) from its arrival until its reply is
 * done and its handler has ended (`whileHandled`): a public route otherwise lets each unauthenticated
 * connection park up to its body limit for `requestMs` (8 connections held 248 MiB of
 * `POST /verify/evidence` for 120 s), and a client that closes its connection once its body is sent
 * would release the bytes its handler still holds (a body queued for the evidence threads). Full, a request is
 * refused on arrival — 503 `ERR_SERVICE_BUSY` with `Retry-After` — before any of its body is read.
 * Small bodies fit by the thousand, so the route's throughput is unchanged; bodies declared at most
 * `uncountedBytes` are not counted at all (a route whose usual bodies are small never refuses them).
 */
export class BodyBudget {
  private held = 0;
  /** Each admitted request's hold, for its handler (`whileHandled`). */
  private readonly holds = new WeakMap<FastifyRequest, Hold>();

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
    const hold: Hold = { bytes, counted: true, closed: false, handlers: 0 };
    this.holds.set(request, hold);
    const closed = (): void => {
      hold.closed = true;
      this.releaseIfDone(hold);
    };
    // A client that left while the route authenticated it (before its body is read) had its close
    // reported before this listens for it: its bytes would be held for good.
    if (reply.raw.closed) closed();
    else reply.raw.once('close', closed);
  }

  /**
   * Runs the handler of an admitted request (`admit`) with its body counted until the handler ends,
   * even when the client closed its connection first: the handler holds the body meanwhile. A handler
   * that starts after the connection closed (its body parsed off the event loop meanwhile) counts it
   * again, even past the budget: the bytes are held whatever the count says.
   */
  whileHandled<T>(request: FastifyRequest, handle: () => Promise<T> | T): Promise<T> | T {
    const hold = this.holds.get(request);
    // A body not counted (a small one, or a request refused before it was admitted) costs no extra turn.
    return hold === undefined ? handle() : this.handledWith(hold, handle);
  }

  private async handledWith<T>(hold: Hold, handle: () => Promise<T> | T): Promise<T> {
    if (!hold.counted) {
      hold.counted = true;
      this.held += hold.bytes;
    }
    hold.handlers += 1;
    try {
      return await handle();
    } finally {
      hold.handlers -= 1;
      this.releaseIfDone(hold);
    }
  }

  /** Releases `hold`'s bytes once its connection is closed and no handler holds its body. */
  private releaseIfDone(hold: Hold): void {
    if (hold.counted && hold.closed && hold.handlers === 0) {
      hold.counted = false;
      this.held -= hold.bytes;
    }
  }
}

/** An admitted request's bytes, and what still holds them. */
interface Hold {
  readonly bytes: number;
  /** Its bytes are in `held`. */
  counted: boolean;
  /** Its reply's connection closed (the reply sent, or the client gone). */
  closed: boolean;
  /** Its handlers running (`whileHandled`). */
  handlers: number;
}
