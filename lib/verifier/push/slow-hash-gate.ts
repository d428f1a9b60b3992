import { performance } from 'node:perf_hooks';
import type { VerifierOutage } from '../../attestation/push-failure-decision.js';
import { ConcurrencyLimiter } from '../../timing/concurrency-limiter.js';
import { OutagePeriods } from './outage-periods.js';
import { PushRefused } from './push-reply.js';

/** libuv's thread pool size: `UV_THREADPOOL_SIZE` when it is a valid size (1–1024), else libuv's default of 4. */
export function threadPoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const size = Number(env['UV_THREADPOOL_SIZE']);
  return Number.isInteger(size) && size >= 1 && size <= 1024 ? size : 4;
}

/** Hashes waiting for a thread past which a new one is refused (503): about 10 s of work at 300 ms a hash on two threads. */
const MAX_WAITING = 64;
/** What a hash is assumed to take before one was timed (600 000 PBKDF2 rounds on a slow core). */
const FIRST_ESTIMATE_SECONDS = 0.5;

/**
 * Runs the session tokens' PBKDF2 hashes (600 000 rounds, a few hundred ms each) on at most half of
 * libuv's thread pool. The pull rounds' quote signatures are checked on that pool too: when a fleet of
 * push agents opens its sessions at once (a mass reboot, a verifier restart, when every agent's first
 * request costs one check of its token), a thousand hashes queued on all four threads held every
 * signature check behind minutes of hashing, and the pull rounds waiting for them ran late. With the
 * gate the other threads stay free. Hashes past the gate wait in order; past `maxWaiting` waiting, a
 * new one is refused with 503 and a `Retry-After` of the backlog's expected time, so agents come back
 * spread out instead of piling up requests (and their connections) here.
 *
 * The gate remembers when it was busy (`busy()`): from a refusal until no hash waits any more, two
 * such stretches less than `busyMergeMs` apart counted as one. An agent refused meanwhile was silent
 * because of the verifier, as during a database outage (`decidePushSilence`).
 */
export class SlowHashGate {
  private readonly limiter: ConcurrencyLimiter;
  private readonly busyPeriods: OutagePeriods;
  private secondsPerHash = FIRST_ESTIMATE_SECONDS;

  constructor(
    readonly concurrency = Math.max(1, Math.floor(threadPoolSize() / 2)),
    readonly maxWaiting = MAX_WAITING,
    busyMergeMs = 0,
    /** The clock busy times are dated on (unix ms): the one the silence sweep measures on. */
    clock: () => number = Date.now,
  ) {
    this.limiter = new ConcurrencyLimiter(concurrency);
    this.busyPeriods = new OutagePeriods(busyMergeMs, clock);
  }

  /**
   * Refuses (503) when every thread of the gate is busy and `maxWaiting` hashes wait already. Called
   * before the work that leads to a hash too, so a refused request costs neither that work nor one of
   * its session's limited slow checks.
   */
  admit(): void {
    if (this.limiter.running >= this.concurrency && this.limiter.queued >= this.maxWaiting) {
      this.busyPeriods.failed();
      throw new PushRefused(503, 'verifier_busy', 'too many session tokens are being checked; try again later', this.backlogSeconds());
    }
  }

  /** Runs `hash` when a thread of the gate is free; refuses (503) when too many already wait. */
  async run<T>(hash: () => Promise<T>): Promise<T> {
    this.admit();
    return this.limiter.run(async () => {
      const started = performance.now();
      try {
        return await hash();
      } finally {
        // A moving estimate, so Retry-After follows the machine's speed.
        this.secondsPerHash = 0.8 * this.secondsPerHash + (0.2 * (performance.now() - started)) / 1000;
        // The backlog that made it refuse is worked off once nothing waits behind this hash.
        if (this.limiter.queued === 0) this.busyPeriods.succeeded();
      }
    });
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
    return this.limiter.queued;
  }

  private backlogSeconds(): number {
    return Math.max(1, Math.ceil(this.hashingSeconds(this.limiter.queued + this.limiter.running)));
  }
}
