/**
 * A sliding-window counter per key (the session limits, spec §10.2: 50 per minute per IP, 15 per
 * minute per agent; `PushSessions` says what each counts). In memory, per process: a limit that resets on restart only lets an agent
 * in sooner, and the token check behind it still holds. Keys idle for a window are dropped, so the
 * map cannot grow with the number of callers that stopped calling.
 */
export class RateLimiter {
  private readonly hits = new Map<string, number[]>();
  private sweeps = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Counts a hit for `key` at `now`; returns undefined when allowed, else the seconds until a slot frees. */
  take(key: string, now = Date.now()): number | undefined {
    const since = now - this.windowMs;
    const recent = this.recent(key, since);
    if (recent.length >= this.limit) {
      this.hits.set(key, recent);
      return this.waitFor(recent, now);
    }
    recent.push(now);
    this.hits.set(key, recent);
    this.sweeps += 1;
    if (this.sweeps % 1024 === 0) this.dropIdle(since);
    return undefined;
  }

  /** Whether a hit for `key` at `now` would be allowed, without counting it: undefined if so, else the seconds until a slot frees. */
  wait(key: string, now = Date.now()): number | undefined {
    const recent = this.recent(key, now - this.windowMs);
    return recent.length >= this.limit ? this.waitFor(recent, now) : undefined;
  }

  private recent(key: string, since: number): number[] {
    return (this.hits.get(key) ?? []).filter((t) => t > since);
  }

  /**
   * Seconds until the oldest hit leaves the window, at most a window: a caller's `now` may be read before
   * a concurrent request counted its hit (a proof read its time, then waited on the database), and the
   * wait must not then exceed the window (a Retry-After of 61 s for a one-minute limit).
   */
  private waitFor(recent: readonly number[], now: number): number {
    return Math.min(this.windowMs, (recent[0] as number) + this.windowMs - now) / 1000;
  }

  private dropIdle(since: number): void {
    for (const [key, times] of this.hits) {
      if ((times.at(-1) ?? 0) <= since) this.hits.delete(key);
    }
  }
}
