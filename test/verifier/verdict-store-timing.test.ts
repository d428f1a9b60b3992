import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { RoundWriter } from '../../lib/verifier/round-writer.js';
import { storeRounds } from '../../lib/verifier/save-rounds.js';
import { VerdictStore, type Verdict } from '../../lib/verifier/verdict-store.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';
import { bareVerdict } from './helpers/bare-verdict.js';

/** A batch window long enough that "waited for it" and "did not" cannot be confused. */
const WINDOW_MS = 3_000;

/**
 * When a pull verdict is stored and what time it carries (real PostgreSQL): passes wait for the batch
 * window to share a transaction, a failure is stored at once; the stored round times are the
 * decision's, not the store's, since the next round is timed from the decision.
 */
describe('verifier pull loop: a failure stored at once, round times from the decision (real PostgreSQL)', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let knex: Knex;
  let writer: RoundWriter;
  let store: VerdictStore;
  let repository: VerifierAgentRepository;

  before(async function () {
    opened = await openMigratedTestSchema();
    knex = opened.database.knex;
    writer = new RoundWriter(knex, { batchDelayMs: WINDOW_MS });
    repository = new VerifierAgentRepository(knex);
    store = new VerdictStore({ repository, writer, health: new VerifierHealth(), verifierId: 'default', owner: 'me', leaseSeconds: 30, log: pino({ level: 'silent' }) });
  });

  after(async function () {
    await writer?.close();
    await opened?.dispose();
  });

  async function enrolled(agentId: string): Promise<string | undefined> {
    const enrolment = pullAgentEnrolment({ agentId, port: 9002, tpmPolicy: '{"mask": "0x400"}', akTpm: 'AAAA', mtlsCert: null, supportedVersion: '2.6' });
    await repository.insert(enrolment, initialAgentState(OperationalState.GET_QUOTE), 'me', 600);
    return agentRowVersion(knex, agentId);
  }

  function verdict(outcome: 'pass' | 'fail'): Verdict {
    return bareVerdict(outcome === 'pass' ? OperationalState.GET_QUOTE : OperationalState.FAILED, 1);
  }

  it('stores a failure at once, while a pass decided with it waits for the batch window', async function () {
    // A window of 20 s here, which the writer's close ends: a third of it is far beyond a CI host's stall of
    // this process (~3 s), which came close to a third of 3 s; under the test's timeout, so a failure that
    // waited for the window fails the bound.
    const longWindowMs = 20_000;
    const longWriter = new RoundWriter(knex, { batchDelayMs: longWindowMs });
    const longStore = new VerdictStore({ repository, writer: longWriter, health: new VerifierHealth(), verifierId: 'default', owner: 'me', leaseSeconds: 30, log: pino({ level: 'silent' }) });
    const passing = await enrolled('store-timing-pass');
    const failing = await enrolled('store-timing-fail');
    const started = Date.now();
    let passStoredAt: number | undefined;
    const pass = longStore.store('store-timing-pass', verdict('pass'), { rowVersion: passing }).then((stored) => ((passStoredAt = Date.now()), stored));
    expect(await longStore.store('store-timing-fail', verdict('fail'), { rowVersion: failing })).to.equal(true);
    const failStoredAfter = Date.now() - started;
    expect(failStoredAfter, 'the failure stored within a third of the window').to.be.below(longWindowMs / 3);
    expect(passStoredAt, 'the pass still waiting when the failure was stored').to.equal(undefined);
    longStore.close();
    await longWriter.close();
    expect(await pass, 'the pass stored when the writer closed').to.equal(true);
    expect((passStoredAt as number) - started, 'the pass stored at the close, not before').to.be.at.least(failStoredAfter);
  });

  it('stores the decision\'s time as the round\'s attempted_at and the agent\'s last_attempt_at, not the time the batch was written', async function () {
    const rowVersion = await enrolled('store-timing-decided');
    const decided = Date.now();
    expect(await store.store('store-timing-decided', verdict('pass'), { rowVersion })).to.equal(true);
    expect(Date.now() - decided, 'stored after the window').to.be.at.least(WINDOW_MS - 50);
    const history = (await knex('verifier_attestation_history').where({ agent_id: 'store-timing-decided' }).select('attempted_at')) as { attempted_at: Date }[];
    const agent = (await knex('verifier_agents').where({ agent_id: 'store-timing-decided' }).first('last_attempt_at')) as { last_attempt_at: Date };
    expect(history).to.have.length(1);
    expect(Math.abs((history[0] as { attempted_at: Date }).attempted_at.getTime() - decided), 'attempted_at from the decision').to.be.below(200);
    expect(Math.abs(agent.last_attempt_at.getTime() - decided), 'last_attempt_at from the decision').to.be.below(200);
  });

  it('keeps the decision\'s time through a failed write: the retry that stores the round, seconds later, stores the decision\'s time, not its own', async function () {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    // No window: the write fails at once, and what is measured is the retry's delay only.
    const audited = new RoundWriter(knex, { batchDelayMs: 0, audit: { key: { privateKey, publicKey }, actor: 'instance-1' } });
    const retrying = new VerdictStore({ repository, writer: audited, health: new VerifierHealth(), verifierId: 'default', owner: 'me', leaseSeconds: 30, log: pino({ level: 'silent' }) });
    const rowVersion = await enrolled('store-timing-retried');
    // The audit records' table gone: the batch's transaction fails at its audit step, after the round's statement.
    await knex.raw('alter table audit_records rename to audit_records_away');
    let restored = false;
    try {
      const decided = Date.now();
      const storing = retrying.store('store-timing-retried', verdict('pass'), { rowVersion }, performance.now());
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await knex.raw('alter table audit_records_away rename to audit_records');
      restored = true;
      expect(await storing).to.equal(true);
      const storedAfter = Date.now() - decided;
      expect(storedAfter, 'stored by a retry, seconds after the decision').to.be.at.least(1_500);
      const history = (await knex('verifier_attestation_history').where({ agent_id: 'store-timing-retried' }).select('attempted_at')) as { attempted_at: Date }[];
      const agent = (await knex('verifier_agents').where({ agent_id: 'store-timing-retried' }).first('last_attempt_at')) as { last_attempt_at: Date };
      expect(history).to.have.length(1);
      expect(Math.abs((history[0] as { attempted_at: Date }).attempted_at.getTime() - decided), 'attempted_at from the decision').to.be.below(200);
      expect(Math.abs(agent.last_attempt_at.getTime() - decided), 'last_attempt_at from the decision').to.be.below(200);
    } finally {
      if (!restored) await knex.raw('alter table audit_records_away rename to audit_records');
      retrying.close();
      await audited.close();
    }
  });

  it('dates the decision by the statement\'s clock, not by its transaction\'s start: a round decided a second into a transaction is not dated a second early', async function () {
    const rowVersion = await enrolled('store-timing-late-in-transaction');
    await knex.transaction(async (trx) => {
      await trx.raw('select 1');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const decided = Date.now() - 100;
      const { state, history } = verdict('pass');
      const write = { agentId: 'store-timing-late-in-transaction', verifierId: 'default', owner: 'me', leaseSeconds: 30, state, history, expectedVersion: rowVersion, decidedAt: performance.now() - 100 };
      expect(await storeRounds(trx, [write])).to.have.keys('store-timing-late-in-transaction');
      const stored = (await trx('verifier_attestation_history').where({ agent_id: write.agentId }).first('attempted_at')) as { attempted_at: Date };
      const agent = (await trx('verifier_agents').where({ agent_id: write.agentId }).first('last_attempt_at')) as { last_attempt_at: Date };
      expect(Math.abs(stored.attempted_at.getTime() - decided), 'attempted_at from the decision').to.be.below(200);
      expect(Math.abs(agent.last_attempt_at.getTime() - decided), 'last_attempt_at from the decision').to.be.below(200);
      // To the microsecond, which a JavaScript Date does not hold: one reading of the clock for both rows.
      const same = (await trx.raw(
        'select h.attempted_at = a.last_attempt_at as same from verifier_attestation_history h join verifier_agents a using (agent_id) where agent_id = ?',
        [write.agentId],
      )) as { rows: { same: boolean }[] };
      expect(same.rows, 'attempted_at and last_attempt_at the same instant').to.deep.equal([{ same: true }]);
    });
  });
});
