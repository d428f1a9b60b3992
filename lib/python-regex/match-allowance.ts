/**
 * What one request may spend running linear-time matchers (linear-regex.ts), in nanoseconds.
 * Before each engine run its worst case is estimated — the program's cost (internal/program-cost.ts)
 * × (the text's length + 1), at `NS_PER_UNIT`, re2js's speed when its lazy DFA gives up and it
 * steps every live state on every character — and a run that could pass the allowance never
 * starts; what the run really took is then spent. The estimate alone would refuse real lists
 * (a rule starting `.*` runs on every path, at a tiny fraction of its worst case), the time alone
 * could not stop one run of seconds. `onExceeded` throws the owner's own error, which ends the
 * owner's work (a run that fits could still go ahead); by default `MatchAllowanceExceeded`.
 */
export class MatchAllowance {
  /**
   * re2js 2.10's worst measured (`npm run bench -- match-estimate`): rules `.*.{500}xN` or
   * `.*[a-z0-9_]{500}xN` on a 1,000-character mixed path, 9–10 ns a unit on an idle machine and up
   * to 14 on a loaded one (`[^X]*.{1000}b`, the first measured, 2.5). Run time is what the allowance
   * spends, so the estimate must cover the loaded figure.
   */
  static readonly NS_PER_UNIT = 20;

  private spentNs = 0;
  private engineRuns = 0;

  constructor(
    readonly limitNs: number,
    private readonly onExceeded: (wantedNs: number, allowance: MatchAllowance) => never = exceeded,
  ) {}

  /** Nanoseconds the runs that went ahead took. */
  get spent(): number {
    return this.spentNs;
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
    if (this.spentNs + wantedNs > this.limitNs) {
      this.onExceeded(wantedNs, this);
    }
    const start = process.hrtime.bigint();
    try {
      return engine();
    } finally {
      this.spentNs += Number(process.hrtime.bigint() - start);
      this.engineRuns += 1;
    }
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

function ms(ns: number): number {
  return Math.round(ns / 1e6);
}
