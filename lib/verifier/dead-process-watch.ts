import type { Logger } from 'pino';
import { RepeatingCheck } from '../timing/repeating-check.js';
import { BEAT_GRACE_MS } from './process-lock-sql.js';
import type { ProcessLock } from './process-lock.js';
import type { VerifierProcessRepository } from './verifier-process-repository.js';

/** The longest wait between two ticks: a live process beats at least twice within `BEAT_GRACE_MS`. */
const MAX_PERIOD_MS = BEAT_GRACE_MS / 2;
/** The shortest (a sub-second quote interval): ten small statements a second at most. */
const MIN_PERIOD_MS = 100;

/**
 * How often the watch beats and looks: every half second, or every quarter quote interval when that
 * is shorter. A SIGKILLed process is dead one grace (1 s) after its last beat, which was at most one
 * tick before the kill, and seen within a tick after that: at Keylime's default 2 s interval its
 * agents are claimed 0.5–1.5 s after the kill and attested at once, well within the two intervals the
 * issue asks for.
 */
export function watchPeriodMs(quoteIntervalSeconds: number): number {
  return Math.max(MIN_PERIOD_MS, Math.min(MAX_PERIOD_MS, (quoteIntervalSeconds * 1000) / 4));
}

export interface DeadProcessWatchOptions {
  readonly processes: VerifierProcessRepository;
  readonly lock: ProcessLock;
  readonly verifierId: string;
  readonly owner: string;
  readonly periodMs: number;
  readonly log: Logger;
  /** Another process died owning agents to claim: sweep now. */
  readonly found: () => void;
  /** Runs the look as the scheduler's work in flight, so a shutdown waits for it. */
  readonly track: (task: Promise<void>) => void;
  readonly isClosed: () => boolean;
}

/**
 * Every `periodMs`, one statement (`VerifierProcessRepository.beatAndWatch`, no work per agent): beats
 * (with the lock's key, null while it is not held), and asks whether another process of this verifier
 * id died (its lock released, its beat older than the grace) while owning agents to claim. It judges
 * only while this process's own lock has been held for a while (`ProcessLock.settledKey`). When a dead
 * owner appears that the last look did not show, the lease sweep runs at once (`found`) and claims
 * them up to this process's fair share. An owner already seen does not trigger sweeps again and again:
 * the sweeps' own cadence (every second while below the fair share) takes what is left. The same
 * statement tells whether this process's own lock is still held; when its session ended silently, the
 * lock is taken again.
 */
export class DeadProcessWatch {
  private readonly repeating: RepeatingCheck;
  /** Dead owners the last look showed. */
  private seen = new Set<string>();
  /** The last look failed (logged once per streak of failures). */
  private failing = false;

  constructor(private readonly options: DeadProcessWatchOptions) {
    this.repeating = new RepeatingCheck(options, () => this.look());
  }

  start(): void {
    this.repeating.start();
  }

  stop(): void {
    this.repeating.stop();
  }

  private async look(): Promise<void> {
    const { processes, lock, verifierId, owner, log } = this.options;
    const { key, generation, settledKey } = lock;
    try {
      const { deadOwners, ownLockHeld } = await processes.beatAndWatch({ verifierId, owner, lockKey: key, judgeKey: settledKey });
      if (this.failing) {
        log.info('dead-process watch works again');
        this.failing = false;
      }
      if (!ownLockHeld && key !== null) {
        lock.lost(generation);
      }
      const appeared = deadOwners.filter((dead) => !this.seen.has(dead));
      this.seen = new Set(deadOwners);
      if (appeared.length > 0 && !this.options.isClosed()) {
        log.info({ dead: appeared }, 'verifier process died (its lock released): taking its agents over');
        this.options.found();
      }
    } catch (error) {
      if (!this.failing) {
        log.warn({ err: error }, 'dead-process watch failed; the lease sweeps still take over dead processes\' agents');
        this.failing = true;
      }
    }
  }
}
