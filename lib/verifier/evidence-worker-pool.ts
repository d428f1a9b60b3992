import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { EvidenceAnswer, EvidenceCheckOptions } from './evidence-check.js';
import type { TpmEvidenceData } from './verifier-dtos.js';

/** One request's evidence, posted to a worker. */
export interface EvidenceJob {
  readonly id: number;
  readonly data: TpmEvidenceData;
  readonly options: EvidenceCheckOptions;
}

/** A worker's answer to the job with the same id. */
export interface EvidenceJobAnswer {
  readonly id: number;
  readonly answer: EvidenceAnswer;
}

const WORKER_SCRIPT = new URL('./evidence-worker.js', import.meta.url);

/**
 * One thread per core: the event-loop thread (TLS, HTTP, parsing, validation) costs about a third of
 * what the checks cost, so with one thread fewer than cores the checks would leave a core part idle.
 */
export function defaultEvidenceWorkers(): number {
  return availableParallelism();
}

/** Options that only say how the main script is given; a thread refuses them (`--input-type` ends it at start). */
const MAIN_INPUT_OPTIONS: ReadonlySet<string> = new Set(['-e', '--eval', '-p', '--print', '--input-type']);

/** The process's Node options a thread inherits, less those about the main script's input and their values. */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i += 1) {
    const option = execArgv[i] as string;
    if (MAIN_INPUT_OPTIONS.has(option)) {
      i += 1;
    } else if (!MAIN_INPUT_OPTIONS.has(option.split('=')[0] as string)) {
      kept.push(option);
    }
  }
  return kept;
}

interface PoolWorker {
  readonly thread: Worker;
  readonly pending: Map<number, (answer: EvidenceAnswer) => void>;
  /** Why the thread ended, when we know: an uncaught exception or a check over the time bound. */
  endReason: string;
}

/**
 * A check is linear in its input, so a sound one ends in milliseconds; one that has not answered after
 * this long is stuck, and its thread is ended (its jobs answer `internal`) rather than holding requests.
 */
export const DEFAULT_EVIDENCE_JOB_TIMEOUT_MS = 30_000;

/**
 * Worker threads that run the evidence checks of `POST /verify/evidence` off the event loop, so the
 * verifier uses more than one core for them. Threads start on first use, up to `size`; a job goes to
 * the thread with the fewest pending jobs. A thread that ends (a crash, an exception, out of memory)
 * answers each of its pending jobs `internal` — an error reply, never a verdict — and is replaced
 * by a new one on the next job. A job unanswered after `jobTimeoutMs` ends its thread the same way.
 */
export class EvidenceWorkerPool {
  private readonly workers: PoolWorker[] = [];
  private nextId = 0;
  private closed = false;

  constructor(
    readonly size: number = defaultEvidenceWorkers(),
    private readonly script: URL = WORKER_SCRIPT,
    private readonly jobTimeoutMs: number = DEFAULT_EVIDENCE_JOB_TIMEOUT_MS,
  ) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`evidence worker pool size must be a positive integer, not ${String(size)}`);
    }
  }

  /** The answer of a worker for `data`; `internal` if the pool is closed or the worker ends first. */
  check(data: TpmEvidenceData, options: EvidenceCheckOptions): Promise<EvidenceAnswer> {
    if (this.closed) {
      return Promise.resolve({ kind: 'internal', message: 'the evidence worker pool is closed' });
    }
    const worker = this.pick();
    const id = this.nextId++;
    return new Promise((resolve) => {
      const job: EvidenceJob = { id, data, options };
      try {
        worker.thread.postMessage(job);
      } catch (error) {
        resolve({ kind: 'internal', message: `the evidence could not be passed to a worker: ${error instanceof Error ? error.message : String(error)}` });
        return;
      }
      const timer = setTimeout(() => {
        worker.endReason = `: a check took longer than ${this.jobTimeoutMs} ms`;
        void worker.thread.terminate();
      }, this.jobTimeoutMs);
      timer.unref();
      worker.pending.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
    });
  }

  /** Ends every thread; their pending jobs answer `internal`. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.thread.terminate()));
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
    const worker: PoolWorker = { thread: new Worker(this.script, { execArgv: workerExecArgv(process.execArgv) }), pending: new Map(), endReason: '' };
    worker.thread.unref();
    worker.thread.on('message', (message: EvidenceJobAnswer) => {
      const resolve = worker.pending.get(message.id);
      worker.pending.delete(message.id);
      resolve?.(message.answer);
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
      for (const resolve of worker.pending.values()) {
        resolve({ kind: 'internal', message: `the evidence worker ended (exit code ${exitCode}) before answering${worker.endReason}` });
      }
      worker.pending.clear();
    });
    this.workers.push(worker);
    return worker;
  }
}
