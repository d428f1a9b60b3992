import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { RawRequestBody } from '../http/route-registration.js';
import { workerOptions } from '../http/worker-thread-options.js';
import type { EvidenceAnswer, EvidenceCheckOptions } from './evidence-check.js';
import { messageOf } from './error-message.js';

/** One request's body, posted to a worker: its text, or its bytes when large (decoded in the worker: `RawRequestBody`). */
export interface EvidenceJob {
  readonly id: number;
  readonly body: RawRequestBody;
  readonly options: EvidenceCheckOptions;
}

/** What a thread posts once it has loaded, before any answer: the pool posts it nothing before. */
export const EVIDENCE_WORKER_READY = 'ready';

/** A worker's answer to the job with the same id. */
export interface EvidenceJobAnswer {
  readonly id: number;
  readonly answer: EvidenceAnswer;
}

const WORKER_SCRIPT = new URL('./evidence-worker.js', import.meta.url);

/**
 * One thread per core: the event-loop thread (TLS, HTTP, routing) costs about a third of what a
 * request's work in a thread costs, so with one thread fewer than cores a core would stay part idle.
 */
export function defaultEvidenceWorkers(): number {
  return availableParallelism();
}

interface PoolWorker {
  readonly thread: Worker;
  /** Every job posted or queued and not answered yet, by id. */
  readonly pending: Map<number, (answer: EvidenceAnswer) => void>;
  /** Jobs not posted yet: those of this turn of the event loop, or all of them until the thread is ready. */
  queued: EvidenceJob[];
  ready: boolean;
  /**
   * The time bound of the thread's start-up until it is ready, then one per batch posted and not
   * answered yet, oldest first (a thread answers batches in order).
   */
  readonly timers: NodeJS.Timeout[];
  /** Why the thread ended, when we know: an uncaught exception or a batch over the time bound. */
  endReason: string;
}

/**
 * A check is linear in its input, so a sound batch ends in milliseconds; one that has not been
 * answered after this long is stuck, and its thread is ended (its jobs answer `internal`) rather than
 * holding requests.
 */
export const DEFAULT_EVIDENCE_JOB_TIMEOUT_MS = 30_000;

/** A thread loads its modules in well under a second on an idle machine; one not ready after this is stuck. */
const THREAD_START_TIMEOUT_MS = 30_000;

/**
 * Worker threads that parse, validate and check the bodies of `POST /verify/evidence` off the event
 * loop, so the verifier uses more than one core for them and its event loop does little more than TLS
 * and HTTP. Threads start on first use, up to `size`; a job goes to the thread with the fewest
 * pending jobs. The jobs of one turn of the event loop go to a thread in one message and come back
 * in one, so a busy verifier wakes a thread once per batch, not once per request. A thread that ends
 * (a crash, an exception, out of memory) answers each of its pending jobs `internal` — an error
 * reply, never a verdict — and is replaced by a new one on the next job. A batch unanswered after `jobTimeoutMs` ends its thread the same way, and so does a
 * thread not ready (its modules loaded) after 30 s; batches wait for their thread to be ready.
 */
export class EvidenceWorkerPool {
  private readonly workers: PoolWorker[] = [];
  private nextId = 0;
  private closed = false;
  private flushScheduled = false;

  constructor(
    readonly size: number = defaultEvidenceWorkers(),
    private readonly script: URL = WORKER_SCRIPT,
    private readonly jobTimeoutMs: number = DEFAULT_EVIDENCE_JOB_TIMEOUT_MS,
  ) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`evidence worker pool size must be a positive integer, not ${String(size)}`);
    }
  }

  /**
   * The answer of a worker for a request body (text, or bytes it decodes: a large body's text would be
   * decoded and copied into the message on the event loop); `internal` if the pool is closed or the
   * worker ends first.
   */
  check(body: RawRequestBody, options: EvidenceCheckOptions): Promise<EvidenceAnswer> {
    if (this.closed) {
      return Promise.resolve({ kind: 'internal', message: 'the evidence worker pool is closed' });
    }
    const worker = this.pick();
    const id = this.nextId++;
    worker.queued.push({ id, body, options });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return new Promise((resolve) => {
      worker.pending.set(id, resolve);
    });
  }

  /** Ends every thread; their pending jobs answer `internal`. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.thread.terminate()));
  }

  /** Posts each ready thread's queued jobs as one message. */
  private flush(): void {
    this.flushScheduled = false;
    for (const worker of this.workers) {
      if (worker.ready && worker.queued.length > 0) {
        this.post(worker);
      }
    }
  }

  private post(worker: PoolWorker): void {
    const batch = worker.queued;
    worker.queued = [];
    try {
      worker.thread.postMessage(batch);
    } catch (error) {
      const message = `the evidence could not be passed to a worker: ${messageOf(error)}`;
      for (const job of batch) {
        worker.pending.get(job.id)?.({ kind: 'internal', message });
        worker.pending.delete(job.id);
      }
      return;
    }
    this.bound(worker, this.jobTimeoutMs, `a batch of checks took longer than ${this.jobTimeoutMs} ms`);
  }

  /** Ends the thread unless this timer, queued after the others, is cleared within `ms`. */
  private bound(worker: PoolWorker, ms: number, reason: string): void {
    const timer = setTimeout(() => {
      worker.endReason = `: ${reason}`;
      void worker.thread.terminate();
    }, ms);
    timer.unref();
    worker.timers.push(timer);
  }

  private pick(): PoolWorker {
    let best: PoolWorker | undefined;
    for (const worker of this.workers) {
      if (best === undefined || worker.pending.size < best.pending.size) {
        best = worker;
      }
    }
    if (best !== undefined && (best.pending.size === 0 || this.workers.length >= this.size)) {
      return best;
    }
    return this.start();
  }

  private start(): PoolWorker {
    const worker: PoolWorker = {
      thread: new Worker(this.script, workerOptions(process.execArgv)),
      pending: new Map(),
      queued: [],
      ready: false,
      timers: [],
      endReason: '',
    };
    this.bound(worker, THREAD_START_TIMEOUT_MS, `the thread was not ready within ${THREAD_START_TIMEOUT_MS} ms`);
    worker.thread.unref();
    worker.thread.on('message', (answers: readonly EvidenceJobAnswer[] | typeof EVIDENCE_WORKER_READY) => {
      clearTimeout(worker.timers.shift());
      if (answers === EVIDENCE_WORKER_READY) {
        worker.ready = true;
        if (worker.queued.length > 0) {
          this.post(worker);
        }
        return;
      }
      for (const { id, answer } of answers) {
        const resolve = worker.pending.get(id);
        worker.pending.delete(id);
        resolve?.(answer);
      }
    });
    // 'error' (an uncaught exception in the thread) is always followed by 'exit'.
    worker.thread.on('error', (error) => {
      worker.endReason = `: ${error.message}`;
    });
    worker.thread.on('exit', (exitCode) => {
      const at = this.workers.indexOf(worker);
      if (at >= 0) {
        this.workers.splice(at, 1);
      }
      worker.timers.forEach(clearTimeout);
      for (const resolve of worker.pending.values()) {
        resolve({ kind: 'internal', message: `the evidence worker ended (exit code ${exitCode}) before answering${worker.endReason}` });
      }
      worker.pending.clear();
    });
    this.workers.push(worker);
    return worker;
  }
}
