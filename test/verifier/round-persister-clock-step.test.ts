import { expect } from 'chai';
import type { Knex } from 'knex';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { PullDecision } from '../../lib/attestation/pull-decision.js';
import { FailureAnnouncer } from '../../lib/verifier/failure-announcer.js';
import { RoundPersister, type AfterRound } from '../../lib/verifier/round-persister.js';
import { RoundWriter, type RoundWrite } from '../../lib/verifier/round-writer.js';
import type { StoredRound } from '../../lib/verifier/save-rounds.js';
import { VerdictStore } from '../../lib/verifier/verdict-store.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { useMigratedTestSchema } from '../helpers/migrated-test-schema.js';
import { bareVerdict } from './helpers/bare-verdict.js';
import { polledAgentInGetQuote } from './helpers/polled-agent-in-get-quote.js';
import { ROUND_TEST_SETTINGS } from './helpers/pull-settings.js';

const OWNER = 'clock-step-owner';
const HOUR_MS = 3_600_000;
const realDateNow = Date.now.bind(Date);

/** A round writer during whose write the wall clock is stepped by `stepMs` (NTP correcting a clock that ran ahead: negative). */
class ClockSteppingWriter extends RoundWriter {
  constructor(
    knex: Knex,
    private readonly stepMs: number,
  ) {
    super(knex, { batchDelayMs: 0 });
  }

  override async writeReturningOutcome(write: RoundWrite, alone = false): Promise<StoredRound | undefined> {
    Date.now = () => realDateNow() + this.stepMs;
    return super.writeReturningOutcome(write, alone);
  }
}

/**
 * The next round is due `nextRoundIn` after the round was decided, less what storing it took. That
 * elapsed time is measured on the monotonic clock: a wall-clock step during the store (an hour back)
 * must not put the agent's next round an hour off — nobody would poll it meanwhile while its lease is
 * renewed, so no other process takes it over — nor (an hour forward) date the stored round an hour early.
 */
describe('verifier pull loop: a wall-clock step while a verdict is stored (real PostgreSQL)', function () {
  this.timeout(30_000);
  const db = useMigratedTestSchema();

  afterEach(function () {
    Date.now = realDateNow;
  });

  async function persistWithStep(agentId: string, stepMs: number): Promise<number[]> {
    const repository = new VerifierAgentRepository(db.knex);
    const agent = await polledAgentInGetQuote(db.knex, repository, agentId, OWNER);
    const scheduled: number[] = [];
    const after: AfterRound = {
      schedule: (_agent, seconds) => void scheduled.push(seconds),
      reconcile: () => Promise.resolve(),
      drop: () => undefined,
    };
    const writer = new ClockSteppingWriter(db.knex, stepMs);
    const options = { repository, writer, health: new VerifierHealth(), verifierId: 'default', owner: OWNER, leaseSeconds: 30, round: ROUND_TEST_SETTINGS, log: pino({ level: 'silent' }) };
    const passing: PullDecision = { ...bareVerdict(OperationalState.GET_QUOTE, 1), retries: 0, next: { kind: 'poll', inSeconds: 2 } };
    try {
      await new RoundPersister(options, new VerdictStore(options), new FailureAnnouncer(undefined, () => []), after).persist(agent, passing, performance.now());
    } finally {
      Date.now = realDateNow;
      await writer.close();
    }
    return scheduled;
  }

  it('a step back: the next round still comes within the interval', async function () {
    const scheduled = await persistWithStep('clock-step-back', -HOUR_MS);
    expect(scheduled).to.have.length(1);
    expect(scheduled[0]).to.be.within(0, 2);
  });

  it('a step forward: the round is stored with the time it was decided at on the database\'s clock', async function () {
    const before = realDateNow();
    const scheduled = await persistWithStep('clock-step-forward', HOUR_MS);
    expect(scheduled).to.have.length(1);
    expect(scheduled[0]).to.be.within(0, 2);
    const history = (await db.knex('verifier_attestation_history').where({ agent_id: 'clock-step-forward' }).select('attempted_at')) as { attempted_at: Date }[];
    expect(history).to.have.length(1);
    expect(Math.abs((history[0] as { attempted_at: Date }).attempted_at.getTime() - before), 'attempted_at is the decision\'s time').to.be.below(1_000);
  });
});
