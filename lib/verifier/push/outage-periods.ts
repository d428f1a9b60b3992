import type { VerifierOutage } from '../../attestation/push-failure-decision.js';

/**
 * The latest period when this process could not serve push agents, from its first failure to the
 * first success after it (now while none came): the bookkeeping of `DatabaseOutage` (statements that
 * lost their connection, then one answered) and of `SlowHashGate` (sessions refused 503 because too
 * many token hashes wait, then their queue drained). A failure within `mergeMs` of the previous
 * period's end continues it (a flapping database, a backlog that drains and fills again, is one period);
 * `downSeconds` counts only the stretches between a failure and the next success.
 */
export class OutagePeriods {
  /** Start of the latest period (ms since the epoch), if any. */
  private since: number | undefined;
  /** When a success came after it; undefined while it lasts. */
  private endedAt: number | undefined;
  /** Time of the latest period between a failure and the next success, up to its last success (ms). */
  private downMs = 0;
  /** When the current stretch of failures began (ms), while the period lasts. */
  private downSince = 0;

  constructor(
    private readonly mergeMs: number,
    /** The clock periods are dated on (unix ms): the one the silences they excuse are measured on. */
    private readonly clock: () => number = Date.now,
  ) {}

  failed(at = this.clock()): void {
    if (this.since !== undefined && this.endedAt === undefined) return;
    if (this.since === undefined || (this.endedAt !== undefined && at - this.endedAt > this.mergeMs)) {
      this.since = at;
      this.downMs = 0;
    }
    this.downSince = at;
    this.endedAt = undefined;
  }

  succeeded(at = this.clock()): void {
    if (this.since !== undefined && this.endedAt === undefined) {
      this.endedAt = at;
      this.downMs += at - this.downSince;
    }
  }

  /** The latest period in seconds since the epoch, or undefined when there was none. */
  latest(now = this.clock()): VerifierOutage | undefined {
    if (this.since === undefined) return undefined;
    const downMs = this.downMs + (this.endedAt === undefined ? now - this.downSince : 0);
    return { from: this.since / 1000, to: (this.endedAt ?? now) / 1000, downSeconds: downMs / 1000 };
  }
}
