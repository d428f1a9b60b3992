import type { Knex } from 'knex';

/** Readings per measurement: the one with the shortest round trip is kept (it brackets the database's reading tightest). */
const READINGS = 3;

/** How often a started clock measures again: a step of either clock (NTP, an operator) is followed within it. */
const REMEASURE_MS = 10_000;

/**
 * The database's clock as this process sees it: the one clock every verifier process sharing the
 * database stamps and judges times on, whatever its own clock says (docs/keylime-driver.md, "Clocks").
 * The offset to this process's clock is measured by reading `clock_timestamp()` between two readings of
 * this process's clock (the shortest of `READINGS` round trips, half of it at most wrong), at start and
 * every `REMEASURE_MS` while started; a failed measurement keeps the offset before it (the database is
 * away, and so is everything it would date). Reading it costs no round trip: the hot path stamps with it.
 */
export class DatabaseClock {
  /** The database's clock minus this process's, in milliseconds. */
  private offsetMs = 0;
  private measured = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly knex: Knex,
    /** This process's clock in unix milliseconds (tests give one that is off). */
    private readonly processClock: () => number = () => Date.now(),
  ) {}

  /** Measures the offset once, then again every `REMEASURE_MS` until `close`. @throws what the database throws on the first measurement */
  async start(): Promise<void> {
    await this.measure();
    this.schedule();
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Measures the offset now. @throws what the database throws */
  async measure(): Promise<void> {
    let best: { readonly roundTrip: number; readonly offset: number } | undefined;
    for (let n = 0; n < READINGS; n += 1) {
      const before = this.processClock();
      const result = (await this.knex.raw('select extract(epoch from clock_timestamp())::float8 * 1000 as now')) as { rows: { now: number | string }[] };
      const after = this.processClock();
      const database = Number(result.rows[0]?.now);
      if (!Number.isFinite(database) || after < before) continue;
      const reading = { roundTrip: after - before, offset: database - (before + after) / 2 };
      if (best === undefined || reading.roundTrip < best.roundTrip) best = reading;
    }
    if (best === undefined) throw new Error('the database clock could not be read (no finite reading, or this process clock stepped back meanwhile)');
    this.offsetMs = best.offset;
    this.measured = true;
  }

  /** Now on the database's clock, unix seconds (fractions kept). @throws Error before the first measurement: a time on an unknown clock is never stored */
  now(): number {
    return this.nowMs() / 1000;
  }

  /** Now on the database's clock, unix milliseconds. @throws as `now` */
  nowMs(): number {
    if (!this.measured) throw new Error('the database clock is read before it was measured');
    return this.processClock() + this.offsetMs;
  }

  /** Both clocks at one instant, unix seconds: the database's (which stamped the stored times) and this process's (which dates a reply). @throws as `now` */
  readings(): DatabaseClockReadings {
    const processNow = this.processClock();
    if (!this.measured) throw new Error('the database clock is read before it was measured');
    return { databaseNow: (processNow + this.offsetMs) / 1000, processNow: processNow / 1000 };
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.measure()
        .catch(() => undefined)
        .finally(() => {
          if (this.timer !== undefined) this.schedule();
        });
    }, REMEASURE_MS);
    this.timer.unref();
  }
}

/** The database's clock and this process's at one instant (unix seconds): a stored time `t` is `t + processNow - databaseNow` on this process's clock. */
export interface DatabaseClockReadings {
  readonly databaseNow: number;
  readonly processNow: number;
}
