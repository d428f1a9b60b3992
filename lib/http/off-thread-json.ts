import { OFF_THREAD_WORKER, OffThreadPool, type PoolRefusal } from './off-thread-pool.js';

/** A reply body posted to a thread (its bytes moved there, not copied). */
export interface JsonReplyJob {
  readonly kind: 'reply';
  readonly id: number;
  readonly body: Uint8Array;
}

/** The thread's answer: the body's JSON value, or why it is not JSON (what `readJsonBody` threw). */
export type JsonReplyAnswer = { readonly id: number; readonly value: unknown } | { readonly id: number; readonly refusal: string };

/** Reply bodies past this many bytes are read off the event loop when a client has an `OffThreadJson`. */
export const OFF_THREAD_REPLY_BYTES = 1024 * 1024;

/** The body is not JSON (or holds too many values): the reply is not an envelope, as when read on the event loop. */
export class JsonReplyRefused extends Error {}

/**
 * The verifier did not read the body: its reader was full or closing, the parsing thread died, or the
 * parse outlived its bound (its thread ended). Nothing was learnt of the reply, so the round is an
 * unanswered one (retried, then FAILED `not_reachable`), never a verdict on the agent: a verifier
 * short of threads must not fail an honest agent at once.
 */
export class JsonReplyUnread extends Error {}

export interface OffThreadJsonOptions {
  /** Threads parsing at once (default `DEFAULT_REPLY_THREADS`), started on first use. */
  readonly threads?: number;
  /** Replies waiting for a thread at most (default `DEFAULT_WAITING_REPLIES`); past it a read fails at once. */
  readonly maxWaiting?: number;
  /** A parse not answered within this many ms (default `DEFAULT_REPLY_PARSE_TIMEOUT_MS`) fails, and its thread is ended. */
  readonly timeoutMs?: number;
  /** The thread's script (tests: one that dies or sticks). */
  readonly script?: URL;
}

/** One thread: a reply over 1 MiB is a first round's whole IMA log (or a hostile agent's), and parses in under a second. */
export const DEFAULT_REPLY_THREADS = 1;
/**
 * Replies waiting for the thread: as many as a `ReplyBudget` of 128 MiB (the verifier's default
 * `pullReplyBudget`) holds of replies over 1 MiB, so the budget's wait, not the queue's refusal (an
 * unanswered round at once), holds a reply back. The verifier sizes it from its budget
 * (`waitingRepliesFor`).
 */
export const DEFAULT_WAITING_REPLIES = 128;
/** A reply is at most 64 MiB, parsed in about a second: far past that, the parse is stuck or hostile. */
export const DEFAULT_REPLY_PARSE_TIMEOUT_MS = 30_000;

/** Replies over `OFF_THREAD_REPLY_BYTES` that a reply budget of `budgetBytes` holds at once at most: the reply queue that never refuses what the budget admits. */
export function waitingRepliesFor(budgetBytes: number): number {
  return Math.max(1, Math.ceil(budgetBytes / OFF_THREAD_REPLY_BYTES));
}

/** A read the pool does not take fails as a thread's fault does: nothing was learnt of the body. */
function refuse(reason: PoolRefusal): Error {
  return new JsonReplyUnread(reason === 'closing' ? 'the JSON reply reader is closing' : 'too many large JSON replies waiting to be parsed');
}

/**
 * Worker threads that read large reply bodies as `readJsonBody` does (bound on values, then
 * `JSON.parse`), so that parsing one does not hold the event loop: a pull agent may answer a quote
 * with 64 MiB, which took about a second of `JSON.parse` on the event loop. Only the value comes back
 * (a structured clone: for a reply, a few members and one long string, copied in tens of ms). An
 * `OffThreadPool` with the replies' limits: one thread by default, at most `maxWaiting` replies
 * waiting. A read that is not queued (full, closing), whose thread ends (out of memory, a crash) or
 * whose parse outlives `timeoutMs` (its thread then ended and replaced) fails with `JsonReplyUnread`
 * (not `JsonReplyRefused`: nothing was learnt of the body).
 */
export class OffThreadJson {
  private readonly pool: OffThreadPool<JsonReplyAnswer>;

  constructor(options: OffThreadJsonOptions = {}) {
    this.pool = new OffThreadPool({
      threads: options.threads ?? DEFAULT_REPLY_THREADS,
      maxWaiting: options.maxWaiting ?? DEFAULT_WAITING_REPLIES,
      timeoutMs: options.timeoutMs ?? DEFAULT_REPLY_PARSE_TIMEOUT_MS,
      script: options.script ?? OFF_THREAD_WORKER,
      what: 'JSON reply',
      refuse,
    });
  }

  /** The ids of the threads running now (tests: a thread ended for its time bound is replaced). */
  get threadIds(): number[] {
    return this.pool.threadIds;
  }

  /**
   * The JSON value of `body`'s UTF-8 text; rejects with `JsonReplyRefused` when it is not JSON or
   * holds too many values, `JsonReplyUnread` when it was not read. `body`'s bytes are moved to the
   * thread: the caller must not read it after.
   */
  async read(body: Buffer): Promise<unknown> {
    const fields: Omit<JsonReplyJob, 'id' | 'body'> = { kind: 'reply' };
    const answer = await this.pool.run(body, fields).catch((error: unknown) => {
      throw error instanceof JsonReplyUnread ? error : new JsonReplyUnread((error as Error).message);
    });
    if ('refusal' in answer) throw new JsonReplyRefused(answer.refusal);
    return answer.value;
  }

  /** Ends the threads; reads parsing or waiting fail, and later ones are refused. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
