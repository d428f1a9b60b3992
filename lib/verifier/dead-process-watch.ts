import type { Logger } from 'pino';
import type { ProcessLock } from './process-lock.js';
import type { VerifierProcessRepository } from './verifier-process-repository.js';

/** The longest wait between two looks. */
const MAX_PERIOD_MS = 1000;
/** The shortest (a sub-second quote interval): ten small statements a second at most. */
const MIN_PERIOD_MS = 100;

/**
 * How often the watch looks: every second, or every half quote interval when that is shorter. The
 * issue asks for a dead process's agents to be attested again within two intervals; looking every half
 * interval leaves one and a half for the sweep that claims them and their first round (tens of
 * milliseconds each), and a second is already half of Keylime's default 2 s interval.
 */
export function watchPeriodMs(quoteIntervalSeconds: number): number {
  return Math.max(MIN_PERIOD_MS, Math.min(MAX_PERIOD_MS, (quoteIntervalSeconds * 1000) / 2));
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
 * Every `periodMs`, one statement (`VerifierProcessRepository.watch`, no work per agent): has another
 * process of this verifier id died (its lock released) while owning agents to claim? When a dead owner
 * appears that the last look did not show, the lease sweep runs at once (`found`) and claims them up to
 * this process's fair share. An owner already seen does not trigger sweeps again and again: the
 * sweeps' own cadence (every second while below the fair share) takes what is left. The same statement
 * tells whether this process's own lock is still held; when its session ended silently, the lock is
 * taken again.
 */
export class DeadProcessWatch {
  private timer: NodeJS.Timeout | undefined;
  /** Dead owners the last look showed. */
  private seen = new Set<string>();
  /** The last look failed (logged once per streak of failures). */
  private failing = false;

  constructor(private readonly options: DeadProcessWatchOptions) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.options.isClosed()) {
      return;
    }
    this.timer = setTimeout(() => this.options.track(this.look().finally(() => this.schedule())), this.options.periodMs);
  }

  private async look(): Promise<void> {
    const { processes, lock, verifierId, owner, log } = this.options;
    const key = lock.key;
    try {
      const { deadOwners, ownLockHeld } = await processes.watch(verifierId, owner, key);
      if (this.failing) {
        log.info('dead-process watch works again');
        this.failing = false;
      }
      if (!ownLockHeld && key !== null && lock.key === key) {
        lock.lost();
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
