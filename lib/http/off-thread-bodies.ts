import { RequestValidationError, ServiceBusyError } from './http-errors.js';
import { rememberGuardedBody } from './json-guard.js';
import { OFF_THREAD_WORKER, OffThreadPool, type PoolRefusal } from './off-thread-pool.js';

/** A request body posted to a thread (its bytes moved there, not copied), with its route's value bound. */
export interface RequestBodyJob {
  readonly kind: 'request body';
  readonly id: number;
  readonly body: Uint8Array;
  readonly maxValues: number;
}

/** Why `parseRequestBody` refused a body: the parts of its `RequestValidationError`. */
export interface RequestBodyRefusal {
  readonly location: string;
  readonly detail: string;
  /** JSON.parse's message, for a body that is not JSON. */
  readonly cause?: string;
}

/** A thread's answer: the body's value, its refusal, or an unexpected error's message (a 500). */
export type RequestBodyAnswer =
  | { readonly id: number; readonly value: unknown }
  | { readonly id: number; readonly refusal: RequestBodyRefusal }
  | { readonly id: number; readonly failure: string };

export interface OffThreadBodiesOptions {
  /** Threads parsing at once (default `DEFAULT_BODY_THREADS`), started on first use. */
  readonly threads?: number;
  /** Bodies waiting for a thread at most (default `DEFAULT_WAITING_BODIES`); past it a body is refused 503. */
  readonly maxWaiting?: number;
  /** Bytes of the bodies waiting for a thread at most (default `DEFAULT_WAITING_BODY_BYTES`); past it a body is refused 503, unless it would wait alone. */
  readonly maxWaitingBytes?: number;
  /** A parse not answered within this many ms (default `DEFAULT_BODY_PARSE_TIMEOUT_MS`) ends its thread and fails. */
  readonly timeoutMs?: number;
  /** The thread's script (tests: one that dies). */
  readonly script?: URL;
}

/**
 * Two threads: a large body is rare (an agent's first evidence with its whole IMA list, an operator's
 * policy), and a second thread keeps one slow parse from holding the next.
 */
export const DEFAULT_BODY_THREADS = 2;
/**
 * Bodies waiting for a thread: two parsing and eight waiting are ten 32 MiB evidence bodies, more than
 * the push evidence route's budget (128 MiB by default) admits, so the queue binds routes without one.
 */
export const DEFAULT_WAITING_BODIES = 8;
/**
 * Bytes of the bodies waiting for a thread: the count alone let eight bodies of the largest route
 * limit wait (8 × 64 MiB on the verifier's admin routes, which have no `BodyBudget`; and a budgeted
 * route's client that closes its connection releases its budget while its body still waits). As
 * much as the evidence routes' default budget; a body larger than this still waits when it would wait
 * alone.
 */
export const DEFAULT_WAITING_BODY_BYTES = 128 * 1024 * 1024;
/** A thread decodes and parses 100–400 MB a second: 256 MiB (the largest body limit) takes seconds; far past that, it is stuck. */
export const DEFAULT_BODY_PARSE_TIMEOUT_MS = 30_000;
/** Seconds a refused body is asked to wait before it is sent again. */
const RETRY_AFTER_SECONDS = 1;

/** The error of a body the pool does not take: 503 with Retry-After. */
function refuse(reason: PoolRefusal): Error {
  return reason === 'closing'
    ? new ServiceBusyError('the service is closing', RETRY_AFTER_SECONDS)
    : new ServiceBusyError(`too many large request bodies being parsed; retry in ${RETRY_AFTER_SECONDS} s`, RETRY_AFTER_SECONDS);
}

/**
 * Worker threads that parse a service's large request bodies as the event loop does
 * (`parseRequestBody`), so one agent's 32 MiB evidence does not hold every other request, pull round
 * and /health for the second JSON.parse takes: an `OffThreadPool` with the bodies' limits. A queue
 * full by count or by bytes refuses with `ServiceBusyError` (503 with Retry-After). Fail closed: a thread that ends (a
 * crash, out of memory) or outlives `timeoutMs` fails its body with a plain `Error` (a 500): a body is
 * never accepted unparsed or unchecked.
 */
export class OffThreadBodies {
  private readonly pool: OffThreadPool<RequestBodyAnswer>;

  constructor(options: OffThreadBodiesOptions = {}) {
    this.pool = new OffThreadPool({
      threads: options.threads ?? DEFAULT_BODY_THREADS,
      maxWaiting: options.maxWaiting ?? DEFAULT_WAITING_BODIES,
      maxWaitingBytes: options.maxWaitingBytes ?? DEFAULT_WAITING_BODY_BYTES,
      timeoutMs: options.timeoutMs ?? DEFAULT_BODY_PARSE_TIMEOUT_MS,
      script: options.script ?? OFF_THREAD_WORKER,
      what: 'request body',
      refuse,
    });
  }

  /** Bytes of the bodies waiting for a thread now. */
  get bytesWaiting(): number {
    return this.pool.bytesWaiting;
  }

  /** Threads running now (for tests: none before the first large body, none once closed). */
  get threadCount(): number {
    return this.pool.threadCount;
  }

  /**
   * The value of `body` as `parseRequestBody(text, maxValues)` gives it, or its `RequestValidationError`;
   * `ServiceBusyError` when the queue is full or the service is closing; a plain `Error` when its thread
   * failed. `body`'s bytes are moved to the thread: the caller must not read it after.
   */
  async parse(body: Buffer, maxValues: number): Promise<unknown> {
    const fields: Omit<RequestBodyJob, 'id' | 'body'> = { kind: 'request body', maxValues };
    return settle(await this.pool.run(body, fields));
  }

  /** Ends the threads; bodies parsing or waiting fail, and later ones are refused. */
  close(): Promise<void> {
    return this.pool.close();
  }
}

/** The body's value as its thread answered it (checked, remembered as such), or the same error as on the event loop. */
function settle(answer: RequestBodyAnswer): unknown {
  if ('value' in answer) {
    rememberGuardedBody(answer.value);
    return answer.value;
  }
  if ('refusal' in answer) {
    const { location, detail, cause } = answer.refusal;
    throw new RequestValidationError(location, detail, cause === undefined ? {} : { cause: new SyntaxError(cause) });
  }
  throw new Error(`the request body could not be parsed: ${answer.failure}`);
}
