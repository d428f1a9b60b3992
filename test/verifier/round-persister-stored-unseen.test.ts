import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import type { Knex } from 'knex';
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
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { bareVerdict } from './helpers/bare-verdict.js';
import { polledAgentInGetQuote } from './helpers/polled-agent-in-get-quote.js';
import { ROUND_TEST_SETTINGS } from './helpers/pull-settings.js';

const OWNER = 'persister-owner';

/** A round writer whose first write commits and then loses its answer, as a COMMIT reply lost on the wire. */
class FirstAnswerLost extends RoundWriter {
  private lost = false;
  override async writeReturningOutcome(write: RoundWrite, alone = false): Promise<StoredRound | undefined> {
    const outcome = await super.writeReturningOutcome(write, alone);
    if (this.lost) return outcome;
    this.lost = true;
    throw new Error('connection lost before the COMMIT reply');
  }
}

/**
 * A round stored by an attempt whose answer was lost (`STORED_UNSEEN`) leaves the row's version
 * unknown, and perhaps a row an operator stopped meanwhile (a FAIL recorded over the stop): the agent's
 * row is re-read then, not polled again from what the round decided.
 */
describe('verifier pull loop: a round stored unseen re-reads the agent\'s row (real PostgreSQL)', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let knex: Knex;
  let writer: RoundWriter;

  before(async function () {
    opened = await openMigratedTestSchema();
    knex = opened.database.knex;
    writer = new FirstAnswerLost(knex, { batchDelayMs: 0 });
  });

  after(async function () {
    await writer?.close();
    await opened?.dispose();
  });

  it('L1: a FAIL recorded over a stop whose answer was lost does not poll the stopped agent again', async function () {
    const agentId = 'persister-stored-unseen-1';
    const repository = new VerifierAgentRepository(knex);
    const agent = await polledAgentInGetQuote(knex, repository, agentId, OWNER);
    await repository.stopByOperator(agentId, 'default', OperationalState.TENANT_FAILED);
    // A severity policy under which this FAIL does not stop polling.
    const failing: PullDecision = { ...bareVerdict(OperationalState.FAILED, 0), retries: 0, next: { kind: 'poll', inSeconds: 2 } };
    const steps: string[] = [];
    const after: AfterRound = {
      schedule: () => void steps.push('schedule'),
      reconcile: () => Promise.resolve(void steps.push('reconcile')),
      drop: () => void steps.push('drop'),
    };
    const options = { repository, writer, health: new VerifierHealth(), verifierId: 'default', owner: OWNER, leaseSeconds: 30, round: ROUND_TEST_SETTINGS, log: pino({ level: 'silent' }) };
    await new RoundPersister(options, new VerdictStore(options), new FailureAnnouncer(undefined, () => []), after).persist(agent, failing, performance.now());

    expect(await knex('verifier_attestation_history').where({ agent_id: agentId }).select('outcome')).to.deep.equal([{ outcome: 'fail' }]);
    expect(steps).to.deep.equal(['reconcile']);
  });
});
