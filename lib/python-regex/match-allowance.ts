/**
 * What one request may spend running linear-time matchers (linear-regex.ts), in nanoseconds.
 * Before each engine run its worst case is estimated — the program's cost (internal/program-cost.ts)
 * × (the text's length + 1), at `NS_PER_UNIT`, re2js's speed when its lazy DFA gives up and it
 * steps every live state on every character — and a run that could pass the allowance never
 * starts; what the run really took is then spent. The estimate alone would refuse real lists
 * (a rule starting `.*` runs on every path, at a tiny fraction of its worst case), the time alone
 * could not stop one run of seconds. `onExceeded` throws the owner's own error, which ends the
 * owner's work (a run that fits could still go ahead); by default `MatchAllowanceExceeded`.
 *
 * What the runs took is read on the wall clock, which also counts the time the thread was preempted
 * inside a run: on a loaded host (load 9 on 2 cores) a real 50,000-entry first round measured past
 * its allowance and a healthy node failed. So what is spent is the smaller of that sum and the
 * process's CPU time since the first run began. Both are at least the CPU the runs really took (the
 * CPU figure also holds whatever else the process did meanwhile), so preemption is forgiven and no
 * real matching work is. The CPU time is read once at the first run, then only when the wall-clock
 * sum would refuse a run.
 */
export class MatchAllowance {
  /**
   * re2js 2.10's worst measured (`npm run bench -- match-estimate`): rules `.*.{500}xN` or
   * `.*[a-z0-9_]{500}xN` on a 1,000-character mixed path, 9–10 ns a unit on an idle machine and up
   * to 14 on a loaded one (`[^X]*.{1000}b`, the first measured, 2.5). Run time is what the allowance
   * spends, so the estimate must cover the loaded figure.
   */
  static readonly NS_PER_UNIT = 20;

  private wallSpentNs = 0;
  private engineRuns = 0;
  /** `process.cpuUsage()` (user + system, µs) as the first run began. */
  private cpuAtFirstRunUs: number | undefined;

  constructor(
    readonly limitNs: number,
    private readonly onExceeded: (wantedNs: number, allowance: MatchAllowance) => never = exceeded,
  ) {}

  /** Nanoseconds the runs that went ahead took: their wall-clock sum, or the process's CPU time since the first began when smaller. */
  get spent(): number {
    return this.wallSpentNs === 0 ? 0 : Math.min(this.wallSpentNs, this.cpuSinceFirstRunNs());
  }

  /** Engine runs that went ahead. */
  get runs(): number {
    return this.engineRuns;
  }

  /**
   * Runs `engine`, whose worst case is `units`, and spends what it took.
   *
   * @throws whatever `onExceeded` throws, before running, when the worst case would pass the limit.
   */
  run<T>(units: number, engine: () => T): T {
    const wantedNs = units * MatchAllowance.NS_PER_UNIT;
    if (this.wallSpentNs + wantedNs > this.limitNs && this.spent + wantedNs > this.limitNs) {
      this.onExceeded(wantedNs, this);
    }
    this.cpuAtFirstRunUs ??= cpuMicros();
    const start = process.hrtime.bigint();
    try {
      return engine();
    } finally {
      this.wallSpentNs += Number(process.hrtime.bigint() - start);
      this.engineRuns += 1;
    }
  }

  private cpuSinceFirstRunNs(): number {
    return this.cpuAtFirstRunUs === undefined ? 0 : (cpuMicros() - this.cpuAtFirstRunUs) * 1000;
  }
}

/** A run refused because it could pass the allowance: the caller's work ends, and fails closed. */
export class MatchAllowanceExceeded extends Error {
  constructor(
    readonly limitNs: number,
    readonly spentNs: number,
    readonly runs: number,
    readonly wantedNs: number,
  ) {
    super(
      `matching could take over ${ms(limitNs)} ms (${ms(spentNs)} ms spent in ${runs} runs; the next could take ${ms(wantedNs)} ms)`,
    );
  }
}

function exceeded(wantedNs: number, allowance: MatchAllowance): never {
  throw new MatchAllowanceExceeded(allowance.limitNs, allowance.spent, allowance.runs, wantedNs);
}

/** The process's CPU time (user + system, every thread) in µs. */
function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

function ms(ns: number): number {
  return Math.round(ns / 1e6);
}
