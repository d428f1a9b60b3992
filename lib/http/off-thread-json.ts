import { Worker, type WorkerOptions } from 'node:worker_threads';

/** A reply body posted to the thread (its bytes moved there, not copied). */
export interface JsonReplyJob {
  readonly id: number;
  readonly body: Uint8Array;
}

/** The thread's answer: the body's JSON value, or why it is not JSON (what `readJsonBody` threw). */
export type JsonReplyAnswer = { readonly id: number; readonly value: unknown } | { readonly id: number; readonly refusal: string };

/** Reply bodies past this many bytes are read off the event loop when a client has an `OffThreadJson`. */
export const OFF_THREAD_REPLY_BYTES = 1024 * 1024;

/** The body is not JSON (or holds too many values): the reply is not an envelope, as when read on the event loop. */
export class JsonReplyRefused extends Error {}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  readonly timer: NodeJS.Timeout;
}

const WORKER_SCRIPT = new URL('./json-reply-worker.js', import.meta.url);

/**
 * One worker thread that reads large reply bodies as `readJsonBody` does (bound on values, then
 * `JSON.parse`), so that parsing one does not hold the event loop: a pull agent may answer a quote
 * with 64 MiB, which took about a second of `JSON.parse` on the event loop. Only the value comes back
 * (a structured clone: for a reply, a few members and one long string, copied in tens of ms).
 * The thread starts on first use and does not keep the process alive; one that ends (out of memory, a
 * crash) fails the reads it holds with a plain `Error` (not `JsonReplyRefused`: nothing was learnt of
 * the body) and is started again on the next read. A read not answered within its `timeoutMs` fails alone.
 */
export class OffThreadJson {
  private thread: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  /** `threadOptions`: how the thread is started (`workerOptions`, worker-thread-options.ts, for a process started with `-e`). */
  constructor(private readonly threadOptions: WorkerOptions = {}) {}

  /**
   * The JSON value of `body`'s UTF-8 text; rejects with `JsonReplyRefused` when it is not JSON or
   * holds too many values. `body`'s bytes are moved to the thread: the caller must not read it after.
   */
  read(body: Buffer, timeoutMs: number): Promise<unknown> {
    const thread = this.thread ?? this.start();
    const id = this.nextId++;
    // Its own memory is moved; a view into shared memory (Buffer's pool) is copied first.
    const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : new Uint8Array(body);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(id, new Error(`the reply's JSON was not read within ${timeoutMs} ms`)), timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const job: JsonReplyJob = { id, body: owned };
      thread.postMessage(job, [owned.buffer as ArrayBuffer]);
    });
  }

  /** Ends the thread; reads in flight fail. */
  async close(): Promise<void> {
    await this.thread?.terminate();
  }

  private start(): Worker {
    const thread = new Worker(WORKER_SCRIPT, this.threadOptions);
    thread.unref();
    thread.on('message', (answer: JsonReplyAnswer) => {
      const pending = this.pending.get(answer.id);
      if (pending === undefined) return;
      this.pending.delete(answer.id);
      clearTimeout(pending.timer);
      if ('refusal' in answer) pending.reject(new JsonReplyRefused(answer.refusal));
      else pending.resolve(answer.value);
    });
    let reason = '';
    // 'error' (an uncaught exception in the thread) is always followed by 'exit'.
    thread.on('error', (error) => {
      reason = `: ${error.message}`;
    });
    thread.on('exit', (exitCode) => {
      if (this.thread === thread) this.thread = undefined;
      for (const id of [...this.pending.keys()]) this.fail(id, new Error(`the JSON reply worker ended (exit code ${exitCode}) before answering${reason}`));
    });
    this.thread = thread;
    return thread;
  }

  private fail(id: number, error: Error): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.reject(error);
  }
}
