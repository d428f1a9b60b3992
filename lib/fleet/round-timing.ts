/** One row of the verifier's round history (`verifier_attestation_history`), as the benchmark reads it. */
export interface RoundRecord {
  readonly agentId: string;
  /**
   * When the verifier decided the round's verdict, as its history row's `attempted_at` holds it (ms since
   * epoch; the database's clock = this host's).
   */
  readonly verdictAt: number;
  readonly outcome: 'pass' | 'fail' | 'retry';
  readonly nonce: string | null;
  readonly eventIds: readonly string[];
}

export interface RoundTimingInput {
  readonly rounds: readonly RoundRecord[];
  /** When the agent received the quote request carrying `nonce` (ms since epoch), if it did. */
  readonly requestTime: (agentId: string, nonce: string) => number | undefined;
  readonly quoteIntervalSeconds: number;
  /** The measured window (ms since epoch): rounds whose verdict falls in it count. */
  readonly from: number;
  readonly to: number;
  /** A round is late when it starts more than this share of the interval after it was due (default 0.1). */
  readonly lateShare?: number;
  /** Tampered agents and when (ms since epoch, just before the bad entry was logged). */
  readonly tampered: ReadonlyMap<string, number>;
  /** The failure each tampering must be reported with. */
  readonly expectedEvent: string;
  /** Every agent of the fleet, so that one whose rounds stopped coming is seen (`overdueAgents`). */
  readonly agentIds?: readonly string[];
}

export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface RoundTimingReport {
  /** Passing rounds in the window, and per second. */
  readonly attestations: number;
  readonly attestationsPerSecond: number;
  /** Rounds whose start could be compared with their due time, and how many were late. */
  readonly timedRounds: number;
  readonly lateRounds: number;
  /** Start minus due time, ms (negative = early). */
  readonly startDelayMs: Percentiles | undefined;
  /** Rounds whose request the agents never saw (no nonce, or no matching request). */
  readonly untimedRounds: number;
  /**
   * Agents of `agentIds`, not failed, whose next round had not started (more than the late share after
   * it was due) when the window closed: rounds that never came, which `lateRounds` (a round measured
   * against its predecessor, both in the window) cannot see — an agent not polled at all in the window
   * has no late round.
   */
  readonly overdueAgents: number;
  readonly tampered: number;
  /** Tampered agents whose first failing round after the tampering named `expectedEvent`. */
  readonly detected: number;
  /** Tampering to that round's verdict, ms. */
  readonly detectionMs: Percentiles | undefined;
  /** Failing rounds of agents nobody tampered with (should be 0), and their event ids. */
  readonly unexpectedFailures: number;
  readonly unexpectedEvents: readonly string[];
  /** Each timed round: when it started (ms since epoch) and its start delay (ms), for the plot. */
  readonly startDelays: readonly TimedSample[];
  /** Each detection: when the failing verdict was decided (a failure is stored at once) and the detection time (ms). */
  readonly detections: readonly TimedSample[];
}

/** One point of a timing plot: `at` ms since epoch, `ms` the measured time. */
export interface TimedSample {
  readonly at: number;
  readonly ms: number;
}

/**
 * The benchmark's figures from the verifier's own history plus what the agents saw:
 *
 * - a round is **due** `quote_interval` after the previous round's verdict was decided (its history
 *   row's `attempted_at`: the verifier times the next round from the decision), and it **starts**
 *   when the agent receives its quote request (matched by nonce). It is **late** when it starts more
 *   than `lateShare × quote_interval` after it was due — whatever delayed it: timers, the event loop, the verifier's
 *   concurrency limit, connection set-up. Both rounds must have their verdicts in the window;
 * - **detection time** of a tampering = verdict time of the agent's first failing round after it,
 *   which must name `expectedEvent`; an agent tampered but never failed counts as undetected.
 */
export function analyseRoundTiming(input: RoundTimingInput): RoundTimingReport {
  const interval = input.quoteIntervalSeconds * 1000;
  const lateBy = (input.lateShare ?? 0.1) * interval;
  const byAgent = new Map<string, RoundRecord[]>();
  for (const round of input.rounds) {
    const list = byAgent.get(round.agentId) ?? [];
    list.push(round);
    byAgent.set(round.agentId, list);
  }
  let attestations = 0;
  const delays: TimedSample[] = [];
  let untimed = 0;
  const detections: TimedSample[] = [];
  let unexpectedFailures = 0;
  const unexpectedEvents = new Set<string>();
  const inWindow = (round: RoundRecord): boolean => round.verdictAt >= input.from && round.verdictAt <= input.to;
  for (const [agentId, rounds] of byAgent) {
    rounds.sort((a, b) => a.verdictAt - b.verdictAt);
    const tamperedAt = input.tampered.get(agentId);
    rounds.forEach((round, i) => {
      if (!inWindow(round)) {
        return;
      }
      if (round.outcome === 'pass') {
        attestations += 1;
      } else if (round.outcome === 'fail' && (tamperedAt === undefined || round.verdictAt < tamperedAt)) {
        unexpectedFailures += 1;
        round.eventIds.forEach((id) => unexpectedEvents.add(id));
      }
      const previous = rounds[i - 1];
      if (previous === undefined || !inWindow(previous) || previous.outcome !== 'pass') {
        return;
      }
      const start = round.nonce === null ? undefined : input.requestTime(agentId, round.nonce);
      if (start === undefined) {
        untimed += 1;
        return;
      }
      delays.push({ at: start, ms: start - (previous.verdictAt + interval) });
    });
    if (tamperedAt !== undefined) {
      const caught = rounds.find((round) => round.verdictAt >= tamperedAt && round.outcome === 'fail');
      if (caught !== undefined && caught.eventIds.includes(input.expectedEvent)) {
        detections.push({ at: caught.verdictAt, ms: caught.verdictAt - tamperedAt });
      }
    }
  }
  const overdue = (agentId: string): boolean => {
    const rounds = byAgent.get(agentId) ?? [];
    const last = rounds.filter((round) => round.verdictAt <= input.to).at(-1);
    // A failed agent is polled no more, by design.
    if (last?.outcome === 'fail') return false;
    const due = (last?.verdictAt ?? Number.NEGATIVE_INFINITY) + interval;
    const next = rounds.find((round) => round.verdictAt > input.to);
    const started = next?.nonce === null || next === undefined ? undefined : input.requestTime(agentId, next.nonce);
    // The next round may still have started in time, its verdict after the window.
    return (started ?? input.to) > due + lateBy;
  };
  const seconds = (input.to - input.from) / 1000;
  return {
    attestations,
    attestationsPerSecond: seconds > 0 ? attestations / seconds : 0,
    timedRounds: delays.length,
    lateRounds: delays.filter((delay) => delay.ms > lateBy).length,
    startDelayMs: percentiles(delays.map((delay) => delay.ms)),
    untimedRounds: untimed,
    overdueAgents: (input.agentIds ?? []).filter(overdue).length,
    tampered: input.tampered.size,
    detected: detections.length,
    detectionMs: percentiles(detections.map((detection) => detection.ms)),
    unexpectedFailures,
    unexpectedEvents: [...unexpectedEvents].sort(),
    startDelays: delays,
    detections,
  };
}

/** Nearest-rank p50, p99 and the maximum; undefined for no values. */
export function percentiles(values: readonly number[]): Percentiles | undefined {
  if (values.length === 0) {
    return undefined;
  }
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
  return { p50: rank(0.5), p99: rank(0.99), max: sorted[sorted.length - 1] as number };
}
