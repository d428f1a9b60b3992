import { Worker } from 'node:worker_threads';
import { workerOptions } from './worker-thread-options.js';

/** The script of a pool's threads: it answers request bodies and replies alike (off-thread-worker.ts). */
export const OFF_THREAD_WORKER = new URL('./off-thread-worker.js', import.meta.url);

/** What a thread of an `OffThreadPool` is posted: the job's id, its bytes (moved there, not copied), and its own fields. */
export type PostedJob<Fields> = Fields & { readonly id: number; readonly body: Uint8Array };

/** Why a pool did not take a job: its queue was full, or it is closing. */
export type PoolRefusal = 'busy' | 'closing';

export interface OffThreadPoolOptions {
  /** Threads parsing at once, started on first use. */
  readonly threads: number;
  /** Jobs waiting for a thread at most; past it a job is refused (`refuse('busy')`). */
  readonly maxWaiting: number;
  /**
   * Bytes of the jobs waiting for a thread at most (default: no bound but `maxWaiting`); a job that
   * would wait past it is refused (`refuse('busy')`), except one that would wait alone, so a job
   * larger than the bound still gets a thread.
   */
  readonly maxWaitingBytes?: number;
  /** A job not answered within this many ms of reaching its thread fails, and the thread is ended. */
  readonly timeoutMs: number;
  /** The thread's script: `OFF_THREAD_WORKER` (tests: one that dies or sticks). */
  readonly script: URL;
  /** What a job is, in the messages of the errors its thread's faults give: 'request body', 'JSON reply'. */
  readonly what: string;
  /** The error of a job the pool does not take. */
  refuse(reason: PoolRefusal): Error;
}

interface Job<Answer> {
  readonly id: number;
  readonly message: PostedJob<object>;
  resolve(answer: Answer): void;
  reject(error: Error): void;
}

interface PoolThread<Answer> {
  readonly worker: Worker;
  /** The job it is parsing, and the bound on its time. */
  job: Job<Answer> | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Why it ended, when known: an uncaught exception. */
  endReason: string;
}

/**
 * A bounded pool of worker threads that parse large JSON off the event loop: a service's request
 * bodies (`OffThreadBodies`) and the pull verifier's agent replies (`OffThreadJson`), each its own
 * pool with its own limits. A thread parses one job at a time; at most `threads` run, started on
 * first use and not keeping the process alive, and at most `maxWaiting` jobs wait for one (a fuller
 * queue refuses). Fail closed: a thread that ends (a crash, out of memory) fails its job with a plain
 * `Error`, and one that outlives `timeoutMs` is ended and replaced, so a hostile body cannot keep a
 * core busy; a job never passes unparsed. The answer is what the thread posted; the pool's users
 * turn it into a value or their own error.
 */
export class OffThreadPool<Answer extends { readonly id: number }> {
  private readonly threads: PoolThread<Answer>[] = [];
  private readonly waiting: Job<Answer>[] = [];
  /** Bytes of the jobs in `waiting`. */
  private waitingBytes = 0;
  private nextId = 0;
  private closed = false;

  constructor(private readonly options: OffThreadPoolOptions) {
    const { threads, maxWaiting, maxWaitingBytes } = options;
    if (!Number.isInteger(threads) || threads < 1 || !Number.isInteger(maxWaiting) || maxWaiting < 0) {
      throw new RangeError(`${options.what} threads: a positive number of threads and a non-negative queue`);
    }
    if (maxWaitingBytes !== undefined && (!Number.isInteger(maxWaitingBytes) || maxWaitingBytes < 1)) {
      throw new RangeError(`${options.what} threads: a positive number of waiting bytes`);
    }
  }

  /** Threads running now (none before the first job, none once closed). */
  get threadCount(): number {
    return this.threads.length;
  }

  /** The ids of the threads running now (tests: a thread ended for its time bound is replaced by another). */
  get threadIds(): number[] {
    return this.threads.map((thread) => thread.worker.threadId);
  }

  /**
   * The thread's answer to `{...fields, id, body}`; the pool's refusal when its queue is full or it is
   * closing; a plain `Error` when the thread failed. `body`'s bytes are moved to the thread: the caller
   * must not read it after.
   */
  run(body: Buffer, fields: object): Promise<Answer> {
    if (this.closed) return Promise.reject(this.options.refuse('closing'));
    if (!this.hasRoom() && this.queueIsFullFor(body.byteLength)) return Promise.reject(this.options.refuse('busy'));
    // Its own memory is moved; a view into shared memory (Buffer's pool) is copied first.
    const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : new Uint8Array(body);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.push({ id, message: { ...fields, id, body: owned }, resolve, reject });
      this.waitingBytes += owned.byteLength;
      this.dispatch();
    });
  }

  /** Bytes of the jobs waiting for a thread now. */
  get bytesWaiting(): number {
    return this.waitingBytes;
  }

  /** Ends the threads; jobs parsing or waiting fail, and later ones are refused. */
  async close(): Promise<void> {
    this.closed = true;
    this.waitingBytes = 0;
    for (const job of this.waiting.splice(0)) job.reject(this.options.refuse('closing'));
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  /** Whether a job of `bytes` that must wait would pass the queue's count or bytes. */
  private queueIsFullFor(bytes: number): boolean {
    const { maxWaiting, maxWaitingBytes } = this.options;
    if (this.waiting.length >= maxWaiting) return true;
    return maxWaitingBytes !== undefined && this.waiting.length > 0 && this.waitingBytes + bytes > maxWaitingBytes;
  }

  /** An idle thread, or room to start one. */
  private hasRoom(): boolean {
    return this.threads.length < this.options.threads || this.threads.some((thread) => thread.job === undefined);
  }

  /** Hands waiting jobs to idle threads, started up to `threads`; a job that cannot be handed to one fails. */
  private dispatch(): void {
    while (!this.closed && this.waiting.length > 0 && this.hasRoom()) {
      const job = this.waiting.shift() as Job<Answer>;
      this.waitingBytes -= job.message.body.byteLength;
      try {
        this.post(this.threads.find((thread) => thread.job === undefined) ?? this.start(), job);
      } catch (error) {
        job.reject(new Error(`the ${this.options.what} could not be passed to a thread: ${error instanceof Error ? error.message : String(error)}`));
      }
    }
  }

  private post(thread: PoolThread<Answer>, job: Job<Answer>): void {
    thread.worker.postMessage(job.message, [job.message.body.buffer as ArrayBuffer]);
    thread.job = job;
    const { timeoutMs, what } = this.options;
    thread.timer = setTimeout(() => this.abandon(thread, `the ${what} was not parsed within ${timeoutMs} ms`), timeoutMs);
    thread.timer.unref();
  }

  /** The thread's job is done: the next waiting one, if any, goes to it. */
  private release(thread: PoolThread<Answer>): void {
    clearTimeout(thread.timer);
    thread.job = undefined;
    thread.timer = undefined;
    this.dispatch();
  }

  /** Fails the thread's job and ends the thread (a stuck parse); a waiting job gets a new thread. */
  private abandon(thread: PoolThread<Answer>, reason: string): void {
    const job = thread.job;
    this.forget(thread);
    job?.reject(new Error(reason));
    void thread.worker.terminate();
    this.dispatch();
  }

  private forget(thread: PoolThread<Answer>): void {
    clearTimeout(thread.timer);
    thread.job = undefined;
    const at = this.threads.indexOf(thread);
    if (at >= 0) this.threads.splice(at, 1);
  }

  private start(): PoolThread<Answer> {
    const thread: PoolThread<Answer> = { worker: new Worker(this.options.script, workerOptions(process.execArgv)), job: undefined, timer: undefined, endReason: '' };
    thread.worker.unref();
    thread.worker.on('message', (answer: Answer) => {
      const job = thread.job;
      if (job === undefined || job.id !== answer.id) return;
      this.release(thread);
      job.resolve(answer);
    });
    // 'error' (an uncaught exception in the thread) is always followed by 'exit'.
    thread.worker.on('error', (error) => {
      thread.endReason = `: ${error.message}`;
    });
    thread.worker.on('exit', (exitCode) => {
      const job = thread.job;
      this.forget(thread);
      job?.reject(new Error(`the ${this.options.what} worker ended (exit code ${exitCode}) before answering${thread.endReason}`));
      this.dispatch();
    });
    this.threads.push(thread);
    return thread;
  }
}
