import { Worker } from 'node:worker_threads';
import { RequestValidationError, ServiceBusyError } from './http-errors.js';
import { rememberGuardedBody } from './json-guard.js';
import { workerOptions } from './worker-thread-options.js';

/** A request body posted to a thread (its bytes moved there, not copied), with its route's value bound. */
export interface RequestBodyJob {
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
/** A thread decodes and parses 100–400 MB a second: 256 MiB (the largest body limit) takes seconds; far past that, it is stuck. */
export const DEFAULT_BODY_PARSE_TIMEOUT_MS = 30_000;
/** Seconds a refused body is asked to wait before it is sent again. */
const RETRY_AFTER_SECONDS = 1;

const WORKER_SCRIPT = new URL('./request-body-worker.js', import.meta.url);

interface Job {
  readonly id: number;
  readonly body: Uint8Array;
  readonly maxValues: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface BodyThread {
  readonly worker: Worker;
  /** The body it is parsing, and the bound on its time. */
  job: Job | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Why it ended, when known: an uncaught exception. */
  endReason: string;
}

/**
 * Worker threads that parse a service's large request bodies as the event loop does
 * (`parseRequestBody`), so one agent's 32 MiB evidence does not hold every other request, pull round
 * and /health for the second JSON.parse takes. A thread parses one body at a time; at most `threads`
 * run, started on first use and not keeping the process alive, and at most `maxWaiting` bodies wait
 * for one (a fuller queue refuses with `ServiceBusyError`, 503 with Retry-After). Fail closed: a
 * thread that ends (a crash, out of memory) or outlives `timeoutMs` fails its body with a plain
 * `Error` (a 500): a body is never accepted unparsed or unchecked.
 */
export class OffThreadBodies {
  private readonly threads: BodyThread[] = [];
  private readonly waiting: Job[] = [];
  private readonly size: number;
  private readonly maxWaiting: number;
  private readonly timeoutMs: number;
  private readonly script: URL;
  private nextId = 0;
  private closed = false;

  constructor(options: OffThreadBodiesOptions = {}) {
    this.size = options.threads ?? DEFAULT_BODY_THREADS;
    this.maxWaiting = options.maxWaiting ?? DEFAULT_WAITING_BODIES;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_BODY_PARSE_TIMEOUT_MS;
    this.script = options.script ?? WORKER_SCRIPT;
    if (!Number.isInteger(this.size) || this.size < 1 || !Number.isInteger(this.maxWaiting) || this.maxWaiting < 0) {
      throw new RangeError('request body threads: a positive number of threads and a non-negative queue');
    }
  }

  /** Threads running now (for tests: none before the first large body, none once closed). */
  get threadCount(): number {
    return this.threads.length;
  }

  /**
   * The value of `body` as `parseRequestBody(text, maxValues)` gives it, or its `RequestValidationError`;
   * `ServiceBusyError` when the queue is full or the service is closing; a plain `Error` when its thread
   * failed. `body`'s bytes are moved to the thread: the caller must not read it after.
   */
  parse(body: Buffer, maxValues: number): Promise<unknown> {
    if (this.closed) {
      return Promise.reject(new ServiceBusyError('the service is closing', RETRY_AFTER_SECONDS));
    }
    if (this.waiting.length >= this.maxWaiting && !this.hasRoom()) {
      return Promise.reject(new ServiceBusyError(`too many large request bodies being parsed; retry in ${RETRY_AFTER_SECONDS} s`, RETRY_AFTER_SECONDS));
    }
    // Its own memory is moved; a view into shared memory (Buffer's pool) is copied first.
    const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : new Uint8Array(body);
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, body: owned, maxValues, resolve, reject });
      this.dispatch();
    });
  }

  /** Ends the threads; bodies parsing or waiting fail, and later ones are refused. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) job.reject(new ServiceBusyError('the service is closing', RETRY_AFTER_SECONDS));
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  /** An idle thread, or room to start one. */
  private hasRoom(): boolean {
    return this.threads.length < this.size || this.threads.some((thread) => thread.job === undefined);
  }

  /** Hands waiting bodies to idle threads, started up to `size`; a body that cannot be handed to one fails. */
  private dispatch(): void {
    while (!this.closed && this.waiting.length > 0 && this.hasRoom()) {
      const job = this.waiting.shift() as Job;
      try {
        this.run(this.threads.find((thread) => thread.job === undefined) ?? this.start(), job);
      } catch (error) {
        job.reject(new Error(`the request body could not be passed to a thread: ${error instanceof Error ? error.message : String(error)}`));
      }
    }
  }

  private run(thread: BodyThread, job: Job): void {
    const message: RequestBodyJob = { id: job.id, body: job.body, maxValues: job.maxValues };
    thread.worker.postMessage(message, [job.body.buffer as ArrayBuffer]);
    thread.job = job;
    thread.timer = setTimeout(() => this.abandon(thread, `the request body was not parsed within ${this.timeoutMs} ms`), this.timeoutMs);
    thread.timer.unref();
  }

  /** The thread's body is done: the next waiting one, if any, goes to it. */
  private release(thread: BodyThread): void {
    clearTimeout(thread.timer);
    thread.job = undefined;
    thread.timer = undefined;
    this.dispatch();
  }

  /** Fails the thread's body and ends the thread (a stuck parse); a waiting body gets a new thread. */
  private abandon(thread: BodyThread, reason: string): void {
    const job = thread.job;
    this.forget(thread);
    job?.reject(new Error(reason));
    void thread.worker.terminate();
    this.dispatch();
  }

  private forget(thread: BodyThread): void {
    clearTimeout(thread.timer);
    thread.job = undefined;
    const at = this.threads.indexOf(thread);
    if (at >= 0) this.threads.splice(at, 1);
  }

  private start(): BodyThread {
    const thread: BodyThread = { worker: new Worker(this.script, workerOptions(process.execArgv)), job: undefined, timer: undefined, endReason: '' };
    thread.worker.unref();
    thread.worker.on('message', (answer: RequestBodyAnswer) => {
      const job = thread.job;
      if (job === undefined || job.id !== answer.id) return;
      this.release(thread);
      settle(job, answer);
    });
    // 'error' (an uncaught exception in the thread) is always followed by 'exit'.
    thread.worker.on('error', (error) => {
      thread.endReason = `: ${error.message}`;
    });
    thread.worker.on('exit', (exitCode) => {
      const job = thread.job;
      this.forget(thread);
      job?.reject(new Error(`the request body worker ended (exit code ${exitCode}) before answering${thread.endReason}`));
      this.dispatch();
    });
    this.threads.push(thread);
    return thread;
  }
}

/** Settles a body's promise with its thread's answer: its value (checked, remembered as such), or the same error as on the event loop. */
function settle(job: Job, answer: RequestBodyAnswer): void {
  if ('value' in answer) {
    rememberGuardedBody(answer.value);
    job.resolve(answer.value);
  } else if ('refusal' in answer) {
    const { location, detail, cause } = answer.refusal;
    job.reject(new RequestValidationError(location, detail, cause === undefined ? {} : { cause: new SyntaxError(cause) }));
  } else {
    job.reject(new Error(`the request body could not be parsed: ${answer.failure}`));
  }
}
