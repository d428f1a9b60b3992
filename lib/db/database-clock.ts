import type { Knex } from 'knex';

/** Readings per measurement: the one with the shortest round trip is kept (it brackets the database's reading tightest). */
const READINGS = 3;

/** How often a started clock measures again: a step of the database's clock (NTP, an operator) is followed within it. */
const REMEASURE_MS = 10_000;

/**
 * How far this process's clock may move against its monotonic clock between two measurements before it
 * is measured again at once: a suspended host's monotonic clock stood still while its clock went on.
 */
const STEP_MS = 1000;

/**
 * The database's clock as this process sees it: the one clock every verifier process sharing the
 * database stamps and judges times on, whatever its own clock says (docs/keylime-driver.md, "Clocks").
 * Its offset to this process's monotonic clock (`performance.now`) is measured by reading
 * `clock_timestamp()` between two readings of it (the shortest of `READINGS` round trips on one held
 * connection, so a saturated pool does not widen it; half of it at most wrong, applied in the safe
 * direction: stamps the earliest, judgements the latest the database's time may be), at start and every
 * `REMEASURE_MS` while started; a failed measurement keeps the offset
 * before it (the database is away, and so is everything it would date). Being monotonic, the base is
 * not moved by a step of this process's clock (NTP, an operator's `date`): between measurements the
 * database's time does not jump with it. A monotonic clock that stood still while this process's clock
 * went on (a suspended host) is seen at the next reading and measured again at once. Reading it costs
 * no round trip: the hot path stamps with it.
 */
export class DatabaseClock {
  /** The database's clock minus the monotonic one, in milliseconds. */
  private offsetMs = 0;
  /** Half the round trip of the reading `offsetMs` was taken from: the true offset lies within it either side. */
  private uncertaintyMs = 0;
  /** This process's clock minus the monotonic one at the last measurement, in milliseconds. */
  private processOffsetMs = 0;
  private measured = false;
  private timer: NodeJS.Timeout | undefined;
  private stepMeasure: Promise<void> | undefined;

  constructor(
    private readonly knex: Knex,
    /** This process's clock in unix milliseconds, which dates its replies (tests give one that is off). */
    private readonly processClock: () => number = () => Date.now(),
    /** A clock in milliseconds that never steps (tests give one that stands still). */
    private readonly monotonic: () => number = () => performance.now(),
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
    // The readings share one connection, held for them: waiting for a connection of a saturated pool
    // (every connection busy with rounds) happens before the first, outside any round trip measured.
    const best = await this.knex.transaction((connection) => this.shortestReading(connection));
    if (best === undefined) throw new Error('the database clock could not be read (no finite reading)');
    this.offsetMs = best.offset;
    this.uncertaintyMs = best.roundTrip / 2;
    this.processOffsetMs = best.processOffset;
    this.measured = true;
  }

  /** Half the round trip of the reading the offset was measured with, in milliseconds: the database's time lies within it either side of the middle. */
  get uncertainty(): number {
    return this.uncertaintyMs;
  }

  private async shortestReading(connection: Knex.Transaction): Promise<Reading | undefined> {
    let best: Reading | undefined;
    for (let n = 0; n < READINGS; n += 1) {
      const before = this.monotonic();
      const result = (await connection.raw('select extract(epoch from clock_timestamp())::float8 * 1000 as now')) as { rows: { now: number | string }[] };
      const after = this.monotonic();
      const database = Number(result.rows[0]?.now);
      if (!Number.isFinite(database)) continue;
      const reading = { roundTrip: after - before, offset: database - (before + after) / 2, processOffset: this.processClock() - this.monotonic() };
      if (best === undefined || reading.roundTrip < best.roundTrip) best = reading;
    }
    return best;
  }

  /**
   * Now on the database's clock, unix seconds (fractions kept), the earliest it may be: what this
   * stamps (a success, a last attestation, a deadline counted from now) looks older, never younger, to
   * whichever process judges it. @throws Error before the first measurement: a time on an unknown clock is never stored
   */
  now(): number {
    return this.nowMs() / 1000;
  }

  /** `now` in unix milliseconds. @throws as `now` */
  nowMs(): number {
    return this.read().databaseMs - this.uncertaintyMs;
  }

  /**
   * Now on the database's clock, unix milliseconds, the latest it may be: what judges a stored time's
   * age (freshness, silence) with it sees that time older, never younger. @throws as `now`
   */
  latestNowMs(): number {
    return this.read().databaseMs + this.uncertaintyMs;
  }

  /**
   * Both clocks at one instant, unix seconds: the database's (which stamped the stored times), the
   * latest it may be, and this process's (which dates a reply). A stored time judged or shown with them
   * is taken older, never younger, than it is. @throws as `now`
   */
  readings(): DatabaseClockReadings {
    const read = this.read();
    return { databaseNow: (read.databaseMs + this.uncertaintyMs) / 1000, processNow: read.processMs / 1000 };
  }

  /** Both clocks in unix milliseconds; a started clock whose process clock moved against the monotonic one is measured again at once. */
  private read(): { readonly databaseMs: number; readonly processMs: number } {
    if (!this.measured) throw new Error('the database clock is read before it was measured');
    const monotonic = this.monotonic();
    const processMs = this.processClock();
    if (Math.abs(processMs - monotonic - this.processOffsetMs) > STEP_MS) this.measureAfterStep(processMs - monotonic);
    return { databaseMs: monotonic + this.offsetMs, processMs };
  }

  /** Measures again at once, if started; a failed measurement leaves it to the next one scheduled (the step is not seen again). */
  private measureAfterStep(processOffsetMs: number): void {
    if (this.timer === undefined || this.stepMeasure !== undefined) return;
    this.processOffsetMs = processOffsetMs;
    this.stepMeasure = this.measure()
      .catch(() => undefined)
      .finally(() => {
        this.stepMeasure = undefined;
      });
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

/** One reading of the database's clock between two of the monotonic one (milliseconds). */
interface Reading {
  readonly roundTrip: number;
  /** The database's reading minus the middle of the two monotonic ones. */
  readonly offset: number;
  readonly processOffset: number;
}

/** The database's clock and this process's at one instant (unix seconds): a stored time `t` is `t + processNow - databaseNow` on this process's clock. */
export interface DatabaseClockReadings {
  readonly databaseNow: number;
  readonly processNow: number;
}

/**
 * A stored time (unix seconds on the database's clock) on this process's clock at `readings`, in whole
 * seconds rounded down: shown a fraction of a second older, never younger, than it is.
 */
export function shownOnProcessClock(stored: number, readings: DatabaseClockReadings): number {
  return Math.floor(stored + readings.processNow - readings.databaseNow);
}
