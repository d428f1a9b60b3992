import { performance } from 'node:perf_hooks';
import type { VerifierOutage } from '../../attestation/push-failure-decision.js';
import { OutagePeriods } from './outage-periods.js';
import { PushRefused } from './push-reply.js';

/** libuv's thread pool size: `UV_THREADPOOL_SIZE` when it is a valid size (1–1024), else libuv's default of 4. */
export function threadPoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const size = Number(env['UV_THREADPOOL_SIZE']);
  return Number.isInteger(size) && size >= 1 && size <= 1024 ? size : 4;
}

/** Hashes waiting for a thread past which one is refused (503): about 10 s of work at 300 ms a hash on two threads. */
const MAX_WAITING = 64;
/**
 * The longest a hash may be expected to wait for a thread (s), at the gate's measured speed: below the
 * push agent's 30 s request timeout (`PushHttp`), past which it gives up and its hash, run anyway, would
 * be done for nobody. On a host where a hash takes a second, 64 waiting on 2 threads is 32 s.
 */
const MAX_WAIT_SECONDS = 20;
/** What a hash is assumed to take before one was timed (600 000 PBKDF2 rounds on a slow core). */
const FIRST_ESTIMATE_SECONDS = 0.5;
/**
 * How long after an agent's hash was served by its deadline (it started, or its client left) the
 * agent's next hashes wait at the back (ms). A healthy agent needs one hash per session (a token's
 * lifetime, extended as it attests) and per verifier process; the window is the per-agent limits' own
 * minute (15 proven sessions, 5 checks of a session), so the deadline serves one of them a minute.
 */
const FAVOUR_WINDOW_MS = 60_000;

/** A hash waiting for a thread, by its agent's silence deadline (Infinity when it waits at the back). */
interface Waiter {
  readonly deadline: number;
  readonly start: () => void;
  readonly refuse: (refusal: PushRefused) => void;
}

/**
 * The rejection of a hash whose client closed its request before the hash started: nobody reads it
 * (the connection is gone), so its status only names it in the verifier's log.
 */
function clientGoneRefusal(): PushRefused {
  return new PushRefused(503, 'client_gone', 'the client closed its request before its token was hashed');
}

/**
 * Runs the session tokens' PBKDF2 hashes (600 000 rounds, a few hundred ms each) on at most half of
 * libuv's thread pool. The pull rounds' quote signatures are checked on that pool too: when a fleet of
 * push agents opens its sessions at once (a mass reboot, a verifier restart, when every agent's first
 * request costs one check of its token), a thousand hashes queued on all four threads held every
 * signature check behind minutes of hashing, and the pull rounds waiting for them ran late. With the
 * gate the other threads stay free. Past `maxWaiting` waiting (fewer when the last would wait longer
 * than `maxWaitSeconds` at the measured speed), a request is refused with 503 and a `Retry-After` of
 * the backlog's expected time, so agents come back spread out instead of piling up requests (and their
 * connections) here.
 *
 * Hashes wait, and are refused, by their agent's silence deadline (`pushSilenceDeadline`), earliest
 * first, ties in arrival order: a new hash whose agent is closer to being failed than the last one
 * waiting takes its place, and that one is refused. In arrival order an agent refused once came back
 * to a queue refilled by others as often as not, and a storm longer than the busy time's excuse failed
 * it though the verifier was the one refusing it; by deadline, an agent refused keeps its deadline while
 * the others' move on as they attest, so it is admitted ahead of them.
 *
 * An agent's deadline orders one of its hashes at a time (`agentId` given): while one waits or runs,
 * and for `FAVOUR_WINDOW_MS` after it started, its agent's other hashes wait at the back, as those of
 * an unknown deadline, and are the first refused. A node that stopped attesting is close to its
 * deadline; served first for every session it proves (15 a minute), a few dozen such nodes held the
 * whole gate and kept healthy agents refused until these were failed. A hash refused by the gate (a
 * closer deadline took its place) gives the agent's turn back, so its next try keeps its place.
 *
 * The gate remembers when it was busy (`busy()`): from a refusal until no hash waits any more, two
 * such stretches less than `busyMergeMs` apart counted as one. An agent refused meanwhile was silent
 * because of the verifier, as during a database outage (`decidePushSilence`).
 *
 * A hash is given its request's `clientGone` signal: one whose client closed the request (a push agent
 * gives up after 30 s) before it started leaves the queue, or is refused on arrival, and never runs —
 * run anyway, it would take a thread from the agents still waiting, for nobody. A hash already
 * running finishes (PBKDF2 on the thread pool cannot be stopped). A dropped hash is neither a refusal
 * (no busy time starts) nor a hash done (the measured speed is of hashes that ran).
 */
export class SlowHashGate {
  private readonly busyPeriods: OutagePeriods;
  private secondsPerHash = FIRST_ESTIMATE_SECONDS;
  private active = 0;
  /** Ordered by deadline, then arrival: the first starts next, the last is refused first. */
  private readonly queue: Waiter[] = [];
  /**
   * Agents whose hash was served by its deadline, with when that may be again (unix ms on `clock`;
   * Infinity while that hash waits or runs), in the order they were set: the ended ones come first.
   */
  private readonly favours = new Map<string, number>();
  private readonly clock: () => number;

  constructor(
    readonly concurrency = Math.max(1, Math.floor(threadPoolSize() / 2)),
    readonly maxWaiting = MAX_WAITING,
    busyMergeMs = 0,
    /** The clock busy times are dated on (unix ms): the one the silence sweep measures on. */
    clock: () => number = Date.now,
    /** Fewer than `maxWaiting` wait when, at the measured speed, the last would wait longer than this (s). */
    readonly maxWaitSeconds = MAX_WAIT_SECONDS,
  ) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be a positive integer');
    this.busyPeriods = new OutagePeriods(busyMergeMs, clock);
    this.clock = clock;
  }

  /**
   * Refuses (503) a hash for an agent whose silence deadline is `deadline` (Unix seconds; Infinity for
   * none) when every thread of the gate is busy and as many hashes wait as may (`maxWaiting`, fewer on
   * a slow host: `maxWaitSeconds`), none with a later deadline. Called before the work that leads to a
   * hash too, so a refused request costs neither that work nor one of its session's limited slow checks
   * (one displaced from the queue later has spent them). A request whose `clientGone` signal has
   * aborted is refused too (`client_gone`), whatever the queue. `agentId`'s deadline counts for one of
   * its hashes at a time (`FAVOUR_WINDOW_MS`); without it, `deadline` always counts.
   */
  admit(deadline = Infinity, clientGone?: AbortSignal, agentId?: string): void {
    this.check(this.place(deadline, agentId), clientGone);
  }

  /**
   * Runs `hash` when a thread of the gate is free, its agent's silence deadline being `deadline`
   * (for one hash of `agentId` at a time, the others at the back); refuses (503) when too many already
   * wait, at once or when a hash of an earlier deadline takes its place in the queue; drops it
   * (`client_gone`) when `clientGone` aborts before it starts.
   */
  async run<T>(hash: () => Promise<T>, deadline = Infinity, clientGone?: AbortSignal, agentId?: string): Promise<T> {
    const place = this.place(deadline, agentId);
    this.check(place, clientGone);
    const favoured = place === Infinity ? undefined : agentId;
    if (this.active >= this.concurrency) {
      await this.turn(place, favoured, clientGone);
    } else {
      this.active += 1;
      this.favourServed(favoured);
    }
    const started = performance.now();
    try {
      return await hash();
    } finally {
      // A moving estimate, so Retry-After follows the machine's speed.
      this.secondsPerHash = 0.8 * this.secondsPerHash + (0.2 * (performance.now() - started)) / 1000;
      const next = this.queue.shift();
      // The thread passes straight to the next waiter: `active` stays the same.
      if (next === undefined) this.active -= 1;
      else next.start();
      // The backlog that made it refuse is worked off once nothing waits behind this hash.
      if (this.queue.length === 0) this.busyPeriods.succeeded();
    }
  }

  /**
   * The latest time the gate was busy (seconds since the epoch; `to` is now while hashes still wait
   * behind a refusal), or undefined when it never refused.
   */
  busy(now?: number): VerifierOutage | undefined {
    return this.busyPeriods.latest(now);
  }

  /** Seconds the gate needs, at its measured speed, to hash `hashes` tokens one after another on its threads. */
  hashingSeconds(hashes: number): number {
    return (hashes * this.secondsPerHash) / this.concurrency;
  }

  /** Hashes waiting now (for tests and metrics). */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Waits for a thread in deadline order; the last waiter is refused when the queue is full. Leaves the
   * queue, rejected, when `clientGone` aborts first; the busy time then ends if nothing else waits.
   * `favoured` names the agent whose one hash by deadline this is (none for a hash at the back).
   */
  private turn(deadline: number, favoured: string | undefined, clientGone: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((started, refused) => {
      const leave = (): void => {
        this.queue.splice(this.queue.indexOf(waiter), 1);
        if (this.queue.length === 0) this.busyPeriods.succeeded();
        // Spent, as a started hash: a client that sends and closes would otherwise take a place by its
        // deadline (refusing the last waiter) as often as it liked.
        this.favourServed(favoured);
        refused(clientGoneRefusal());
      };
      const waiter: Waiter = {
        deadline,
        start: () => {
          clientGone?.removeEventListener('abort', leave);
          this.favourServed(favoured);
          started();
        },
        refuse: (refusal) => {
          clientGone?.removeEventListener('abort', leave);
          // Refused by the gate, not served: the agent's next hash waits by its deadline again.
          if (favoured !== undefined) this.favours.delete(favoured);
          refused(refusal);
        },
      };
      if (favoured !== undefined) this.setFavour(favoured, Infinity);
      if (this.queue.length >= this.capacity()) this.queue.pop()?.refuse(this.refusal());
      // After every waiter of the same deadline: ties keep their arrival order.
      const at = this.queue.findIndex((other) => other.deadline > deadline);
      this.queue.splice(at === -1 ? this.queue.length : at, 0, waiter);
      clientGone?.addEventListener('abort', leave, { once: true });
    });
  }

  /** Refuses a hash that would wait by `place` when it may not wait, or whose client has gone (`admit`). */
  private check(place: number, clientGone: AbortSignal | undefined): void {
    if (clientGone?.aborted === true) throw clientGoneRefusal();
    if (this.active >= this.concurrency && this.queue.length >= this.capacity() && !(place < (this.queue.at(-1)?.deadline ?? -Infinity))) {
      throw this.refusal();
    }
  }

  /** What a hash waits by: its deadline, or Infinity (the back) while its agent's turn by deadline is taken. */
  private place(deadline: number, agentId: string | undefined): number {
    if (agentId === undefined) return deadline;
    const until = this.favours.get(agentId);
    return until === undefined || until <= this.clock() ? deadline : Infinity;
  }

  /** `agentId`'s hash by deadline started (or its client left): its next waits at the back for the window. */
  private favourServed(agentId: string | undefined): void {
    if (agentId === undefined) return;
    const now = this.clock();
    this.setFavour(agentId, now + FAVOUR_WINDOW_MS);
    // The map is in the order entries were set, so the ended windows are first (one still waiting
    // there holds the rest until it starts, a bounded wait).
    for (const [agent, until] of this.favours) {
      if (until > now) break;
      this.favours.delete(agent);
    }
  }

  /** Sets `agentId`'s entry at the end of the map, so the map stays in the order entries were set. */
  private setFavour(agentId: string, until: number): void {
    this.favours.delete(agentId);
    this.favours.set(agentId, until);
  }

  /** Hashes that may wait: `maxWaiting`, fewer when the last would wait longer than `maxWaitSeconds` (at least one). */
  private capacity(): number {
    return Math.min(this.maxWaiting, Math.max(1, Math.floor((this.maxWaitSeconds * this.concurrency) / this.secondsPerHash)));
  }

  /** A 503 `verifier_busy`, noted as the start (or continuation) of a busy time. */
  private refusal(): PushRefused {
    this.busyPeriods.failed();
    return new PushRefused(503, 'verifier_busy', 'too many session tokens are being checked; try again later', this.backlogSeconds());
  }

  private backlogSeconds(): number {
    return Math.max(1, Math.ceil(this.hashingSeconds(this.queue.length + this.active)));
  }
}
