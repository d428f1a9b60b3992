import { Counter, exponentialBuckets, Gauge, Registry } from 'prom-client';
import { operationalStateLabel, type OperationalState } from '../attestation/operational-state.js';
import { LATE_SHARE, ROUND_START_SLOT_MS } from './round-start-grid.js';
import { ScrapedHistogram } from './scraped-histogram.js';

type RoundOutcome = 'pass' | 'fail' | 'retry' | 'none';

/** How long a scrape waits for the database's count of undelivered revocation notices. */
const COUNT_DEADLINE_MS = 1000;

/** `work`, or a rejection once `ms` have passed. */
function withinDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/**
 * The verifier's Prometheus metrics (`GET /metrics`, text format, prom-client), one registry per
 * verifier so several in one process stay apart: rounds by outcome, round latency and start delay,
 * rounds started per slot of the round-start grid and a slot's capacity, late rounds, agents by state,
 * failed writes, verdicts not stored because the row moved, verdicts waiting to be stored and the
 * window they wait at most, pull re-reads and push verdict waits given up, lease take-overs.
 */
export class VerifierMetrics {
  readonly registry = new Registry();
  /**
   * Rounds decided since the last scrape, by outcome (in the order each outcome first came): the
   * rounds counter takes them when it is read, so a round costs one add, not prom-client's `inc`
   * (labels hashed and validated each call).
   */
  private readonly roundsSinceScrape = new Map<RoundOutcome, number>();
  private readonly duration: ScrapedHistogram;
  private readonly startDelay: ScrapedHistogram;
  private readonly perSlot: ScrapedHistogram;
  private readonly late: Counter;
  private readonly failedWrites: Counter;
  private readonly notStored: Counter;
  private readonly takeOvers: Counter;
  private readonly waitsGivenUp: Counter;
  private readonly rereadsGivenUp: Counter;

  constructor(
    private readonly quoteInterval: number,
    sources: {
      agentStates: () => Iterable<OperationalState>;
      unstoredRounds: () => number;
      slotCapacity: () => number | undefined;
      /** The pull writer's batch window, once it exists. */
      verdictBatchDelayMs?: () => number | undefined;
      /** Revocation notices waiting in the outbox for their receiver. */
      undeliveredRevocations?: () => Promise<number>;
    },
  ) {
    const registers = [this.registry];
    const roundsSinceScrape = this.roundsSinceScrape;
    new Counter({
      name: 'ironlime_verifier_rounds_total',
      help: 'Pull rounds decided, by outcome (pass, fail, retry, none).',
      labelNames: ['outcome'],
      registers,
      collect() {
        for (const [outcome, count] of roundsSinceScrape) {
          if (count > 0) this.inc({ outcome }, count);
          roundsSinceScrape.set(outcome, 0);
        }
      },
    });
    this.duration = new ScrapedHistogram(
      'ironlime_verifier_round_duration_seconds',
      'From the start of a round (request sent) to its verdict, storing excluded.',
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      this.registry,
    );
    this.startDelay = new ScrapedHistogram(
      'ironlime_verifier_round_start_delay_seconds',
      'How long after it was due a round started.',
      [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      this.registry,
    );
    this.perSlot = new ScrapedHistogram(
      'ironlime_verifier_rounds_per_slot',
      `Pull rounds (and re-reads of an agent row after a failed read) started together from one ${ROUND_START_SLOT_MS} ms slot of the round-start grid. The fair share is agents × ${ROUND_START_SLOT_MS / 1000} / quote_interval a slot; slots far above it mean rounds bunch.`,
      // 1, 2, 4 … 2,048: a fleet of 100,000 agents at 2 s has a fair share of 1,000 a slot.
      exponentialBuckets(1, 2, 12),
      this.registry,
    );
    this.late = new Counter({ name: 'ironlime_verifier_late_rounds_total', help: `Rounds started more than ${LATE_SHARE} of the quote interval after they were due.`, registers });
    this.failedWrites = new Counter({ name: 'ironlime_verifier_failed_writes_total', help: 'Attempts to store a verdict (a pull round, or a push attestation\'s) that failed (each is retried, but for a second refusal of its values: docs/verifier.md).', registers });
    this.notStored = new Counter({
      name: 'ironlime_verifier_verdicts_not_stored_total',
      help: 'Pull verdicts not stored because the agent row moved since their round read it (an operator change, another process); the agent is read again and judged afresh. A steady rise means rounds keep losing to something.',
      registers,
    });
    this.waitsGivenUp = new Counter({
      name: 'ironlime_verifier_push_verdict_waits_given_up_total',
      help: "Statements a push verdict waited for (its agent's row read again or taken over, its evidence given back) that failed for another reason than the database's absence: not tried again, the verdict not stored (the agent fails closed). Any rise is a fault to look into.",
      registers,
    });
    this.rereadsGivenUp = new Counter({
      name: 'ironlime_verifier_pull_rereads_given_up_total',
      help: "Re-reads of a pull agent's row (after an operator's change, a refused or moved verdict) that failed for another reason than the database's absence: not tried again, the agent not polled here until a sweep claims it again (its stored row reads stale meanwhile). Any rise is a fault to look into.",
      registers,
    });
    this.takeOvers = new Counter({ name: 'ironlime_verifier_lease_takeovers_total', help: 'Agents this process claimed (restart, new enrolment elsewhere, or a lapsed lease).', registers });
    new Gauge({
      name: 'ironlime_verifier_unstored_rounds',
      help: 'Agents whose last verdict waits to be stored.',
      registers,
      collect() {
        this.set(sources.unstoredRounds());
      },
    });
    new Gauge({
      name: 'ironlime_verifier_undelivered_revocations',
      help: `Revocation notices to the configured receivers (webhooks, an in-process broker) not yet delivered; each is retried until taken or refused. A value that stays up means a receiver is down. NaN: the database did not answer the count within ${COUNT_DEADLINE_MS} ms.`,
      registers,
      async collect() {
        const count = sources.undeliveredRevocations;
        // A scrape answers while the database is away (the other gauges matter most then): the count is unknown, not 0.
        if (count !== undefined) this.set(await withinDeadline(count(), COUNT_DEADLINE_MS).catch(() => Number.NaN));
      },
    });
    new Gauge({
      name: 'ironlime_verifier_verdict_batch_window_seconds',
      help: 'The longest a passing pull verdict waits to share its transaction with others (a tenth of quote_interval, at most a tenth of the lease); a failure is stored at once.',
      registers,
      collect() {
        const delayMs = sources.verdictBatchDelayMs?.();
        if (delayMs !== undefined) this.set(delayMs / 1000);
      },
    });
    new Gauge({
      name: 'ironlime_verifier_slot_capacity',
      help: 'Rounds a slot of the round-start grid takes now before rounds move on to the next slots: twice the fair share of the agents polled here.',
      registers,
      collect() {
        // Nothing to show before the pull loop exists.
        const capacity = sources.slotCapacity();
        if (capacity !== undefined) this.set(capacity);
      },
    });
    new Gauge({
      name: 'ironlime_verifier_agents',
      help: 'Agents this process polls, by operational state.',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        const counts = new Map<OperationalState, number>();
        for (const state of sources.agentStates()) {
          counts.set(state, (counts.get(state) ?? 0) + 1);
        }
        for (const [state, count] of counts) {
          this.set({ state: operationalStateLabel(state) }, count);
        }
      },
    });
  }

  /** A round started `delaySeconds` after it was due. */
  roundStarted(delaySeconds: number): void {
    this.startDelay.observe(delaySeconds);
    if (delaySeconds > LATE_SHARE * this.quoteInterval) {
      this.late.inc();
    }
  }

  /** One slot of the round-start grid started `rounds` rounds together. */
  slotStarted(rounds: number): void {
    this.perSlot.observe(rounds);
  }

  roundDecided(outcome: RoundOutcome, seconds: number): void {
    this.roundsSinceScrape.set(outcome, (this.roundsSinceScrape.get(outcome) ?? 0) + 1);
    this.duration.observe(seconds);
  }

  writeFailed(): void {
    this.failedWrites.inc();
  }

  /** A verdict was not stored: the agent row was no longer the version its round was decided from. */
  verdictNotStored(): void {
    this.notStored.inc();
  }

  /** A statement a push verdict waited for failed with an error that is not the database's absence (`untilDatabaseAnswers`). */
  verdictWaitGivenUp(): void {
    this.waitsGivenUp.inc();
  }

  /** A pull agent's re-read failed for another reason than the database's absence and was given up (`PullScheduler.reconcile`). */
  rereadGivenUp(): void {
    this.rereadsGivenUp.inc();
  }

  tookOver(): void {
    this.takeOvers.inc();
  }

  /** The text exposition and its content type. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
