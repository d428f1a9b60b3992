import { expect } from 'chai';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { RoundWriter, type RoundWrite } from '../../lib/verifier/round-writer.js';
import type { StoredRound } from '../../lib/verifier/save-rounds.js';
import { VerdictStore, type Verdict } from '../../lib/verifier/verdict-store.js';
import type { VerifierAgentEnrolment } from '../../lib/verifier/verifier-agent-record.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { VerifierMetrics } from '../../lib/verifier/verifier-metrics.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';
import { eventually } from './helpers/verifier-fixture.js';
import { bareVerdict } from './helpers/bare-verdict.js';

const AGENT = 'verdict-store-exclusive-1';

/**
 * Two verdicts of one agent stored at once (PostgreSQL holds the first write: a statement trigger
 * waits for an advisory lock the test holds, before any row is locked). The agent is "waiting" from
 * the first write on, and the second store writes nothing: it resolves false once the first is
 * stored, so the history holds one FAIL row.
 */
describe('verifier pull loop: one verdict store per agent at a time, and a lost statement that committed late (real PostgreSQL)', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let knex: Knex;
  let holder: Knex.Transaction | undefined;
  let writer: RoundWriter;
  let lockKey: number;

  before(async function () {
    opened = await openMigratedTestSchema();
    knex = opened.database.knex;
    writer = new RoundWriter(knex, { batchDelayMs: 0 });
    // Unique per run: other tests share the database and its advisory locks.
    lockKey = Number.parseInt(String((await knex.raw('select current_schema() as s')).rows[0].s).slice(-7), 16);
  });

  after(async function () {
    await holder?.rollback().catch(() => undefined);
    await writer?.close();
    await opened?.dispose();
  });

  async function heldWrites(): Promise<number> {
    const held = await knex.raw("select count(*)::int as n from pg_locks where locktype = 'advisory' and objid = ? and not granted", [lockKey]);
    return (held.rows[0] as { n: number }).n;
  }

  function enrolment(): VerifierAgentEnrolment {
    return pullAgentEnrolment({ agentId: AGENT, port: 9002, tpmPolicy: '{"mask": "0x400"}', akTpm: 'AAAA', mtlsCert: null, supportedVersion: '2.6' });
  }

  function failVerdict(attestationCount: number): Verdict {
    return bareVerdict(OperationalState.FAILED, attestationCount);
  }

  it('marks the agent from its first write and does not write a second verdict meanwhile', async function () {
    const repository = new VerifierAgentRepository(knex);
    await repository.insert(enrolment(), initialAgentState(OperationalState.GET_QUOTE), 'me', 600);
    const rowVersion = await agentRowVersion(knex, AGENT);
    const store = new VerdictStore({
      repository, writer, health: new VerifierHealth(), verifierId: 'default', owner: 'me', leaseSeconds: 30, log: pino({ level: 'silent' }),
    });
    await knex.raw(`create function hold_round_writes() returns trigger language plpgsql as $$
      begin perform pg_advisory_xact_lock(${lockKey}); return null; end $$`);
    await knex.raw('create trigger hold_round_writes before update on verifier_agents for each statement execute function hold_round_writes()');
    holder = await knex.transaction();
    await holder.raw('select pg_advisory_xact_lock(?)', [lockKey]);

    const first = store.store(AGENT, failVerdict(1), { rowVersion });
    await eventually('the first write held', async () => (await heldWrites()) === 1);
    expect(store.isWaiting(AGENT), 'waiting while the first write is in flight').to.equal(true);
    expect(store.waitingAgents()).to.deep.equal([AGENT]);
    let secondSettled = false;
    const second = store.store(AGENT, failVerdict(2), { rowVersion }).finally(() => (secondSettled = true));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await heldWrites(), 'writes held').to.equal(1);
    expect(secondSettled, 'the second store settled before the first').to.equal(false);

    await holder.commit();
    holder = undefined;
    expect(await first).to.equal(true);
    expect(await second).to.equal(false);
    expect(store.isWaiting(AGENT)).to.equal(false);
    const history = (await knex('verifier_attestation_history').where({ agent_id: AGENT }).select('outcome', 'attestation_count')) as { outcome: string; attestation_count: number }[];
    expect(history).to.deep.equal([{ outcome: 'fail', attestation_count: 1 }]);
  });

  it('counts as stored a verdict whose first statement, its connection lost, committed while the retry waited on the row', async function () {
    const agentId = `${AGENT}-orphan`;
    const repository = new VerifierAgentRepository(knex);
    await repository.insert({ ...enrolment(), agentId }, initialAgentState(OperationalState.GET_QUOTE), 'me', 600);
    const rowVersion = await agentRowVersion(knex, agentId);
    holder = await knex.transaction();
    await holder.raw('select pg_advisory_xact_lock(?)', [lockKey]);
    // The first write's statement reaches the server and is held there, but its caller is told the
    // connection broke: the store backs off, finds no row with the round id yet, and writes again.
    let orphan: Promise<StoredRound | undefined> | undefined;
    const losing = new (class extends RoundWriter {
      override writeReturningOutcome(write: RoundWrite, alone = false): Promise<StoredRound | undefined> {
        if (orphan !== undefined) return super.writeReturningOutcome(write, alone);
        orphan = super.writeReturningOutcome(write, alone);
        return Promise.reject(Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' }));
      }
    })(knex, { batchDelayMs: 0 });
    const store = new VerdictStore({
      repository, writer: losing, health: new VerifierHealth(), verifierId: 'default', owner: 'me', leaseSeconds: 30, log: pino({ level: 'silent' }),
    });
    const stored = store.store(agentId, failVerdict(1), { rowVersion });
    await eventually('the orphaned statement and the retry both held', async () => (await heldWrites()) === 2);
    await holder.commit();
    holder = undefined;
    expect(await stored, 'stored by the orphaned statement: announced, not dropped').to.equal(true);
    expect(await orphan).to.include({ kind: 'stored' });
    await losing.close();
    const history = (await knex('verifier_attestation_history').where({ agent_id: agentId }).select('outcome')) as { outcome: string }[];
    expect(history).to.deep.equal([{ outcome: 'fail' }]);
  });

  it('stores nothing over a row that moved since the round read it, and counts the verdict as not stored', async function () {
    const agentId = `${AGENT}-moved`;
    const repository = new VerifierAgentRepository(knex);
    await repository.insert({ ...enrolment(), agentId }, initialAgentState(OperationalState.GET_QUOTE), 'me', 600);
    const decidedFrom = await agentRowVersion(knex, agentId);
    // An operator's change after the round read the row.
    await knex('verifier_agents').where({ agent_id: agentId }).update({ operational_state: OperationalState.START });
    const metrics = new VerifierMetrics(2, { agentStates: () => [], unstoredRounds: () => 0, slotCapacity: () => 20 });
    const store = new VerdictStore({
      repository, writer, health: new VerifierHealth(), metrics, verifierId: 'default', owner: 'me', leaseSeconds: 30, log: pino({ level: 'silent' }),
    });
    expect(await store.store(agentId, failVerdict(1), { rowVersion: decidedFrom })).to.equal(false);
    const { text } = await metrics.exposition();
    expect(text).to.match(/^ironlime_verifier_verdicts_not_stored_total 1$/m);
    const rows = (await knex('verifier_agents').where({ agent_id: agentId }).select('operational_state')) as { operational_state: number }[];
    expect(rows).to.deep.equal([{ operational_state: OperationalState.START }]);
    expect(await knex('verifier_attestation_history').where({ agent_id: agentId }).select('outcome')).to.deep.equal([]);
  });

  it('counts as stored a verdict written once while closing whose statement committed with its answer lost', async function () {
    const agentId = `${AGENT}-closing`;
    const repository = new VerifierAgentRepository(knex);
    await repository.insert({ ...enrolment(), agentId }, initialAgentState(OperationalState.GET_QUOTE), 'me', 600);
    const rowVersion = await agentRowVersion(knex, agentId);
    // The write commits, then its caller is told the connection broke (a COMMIT reply lost).
    const answerLost = new (class extends RoundWriter {
      override async writeReturningOutcome(write: RoundWrite, alone = false): Promise<StoredRound | undefined> {
        await super.writeReturningOutcome(write, alone);
        throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
      }
    })(knex, { batchDelayMs: 0 });
    const store = new VerdictStore({
      repository, writer: answerLost, health: new VerifierHealth(), verifierId: 'default', owner: 'me', leaseSeconds: 30, log: pino({ level: 'silent' }),
    });
    store.close();
    expect(await store.store(agentId, failVerdict(1), { rowVersion }), 'stored: the caller announces it').to.equal(true);
    await answerLost.close();
    const history = (await knex('verifier_attestation_history').where({ agent_id: agentId }).select('outcome')) as { outcome: string }[];
    expect(history).to.deep.equal([{ outcome: 'fail' }]);
  });
});

