import { performance } from 'node:perf_hooks';
import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { PullDecision } from '../../lib/attestation/pull-decision.js';
import type { Database } from '../../lib/db/database-factory.js';
import { FailureAnnouncer } from '../../lib/verifier/failure-announcer.js';
import type { PolledAgent } from '../../lib/verifier/polled-agent.js';
import type { PushVerdictWriter } from '../../lib/verifier/push/push-verdict-writer.js';
import { RoundPersister, type AfterRound } from '../../lib/verifier/round-persister.js';
import { RoundRefused } from '../../lib/verifier/round-retrier.js';
import { RoundWriter, type RoundWrite } from '../../lib/verifier/round-writer.js';
import { VerdictStore } from '../../lib/verifier/verdict-store.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { VerifierHealth, type AgentWrite } from '../../lib/verifier/verifier-health.js';
import { openMigratedTestSchema, openSchemaThroughPort, type OpenedDatabase } from '../helpers/databases.js';
import { bareVerdict } from './helpers/bare-verdict.js';
import { polledAgentInGetQuote } from './helpers/polled-agent-in-get-quote.js';
import { RecordedAfterRound } from './helpers/recorded-after-round.js';
import { ROUND_TEST_SETTINGS } from './helpers/pull-settings.js';
import { pushVerdictWriterOn } from './helpers/push-verdict-writer-on.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { eventually } from './helpers/verifier-fixture.js';

const OWNER = 'refused-owner';

/** The verifier's health, counting the failed writes it is told of. */
class CountingHealth extends VerifierHealth {
  failedWrites = 0;
  override writeFailed(write: AgentWrite, error: unknown): void {
    this.failedWrites += 1;
    super.writeFailed(write, error);
  }
}

/**
 * A verdict the database refuses for its values (a CHECK constraint the test adds: SQLSTATE 23514,
 * a real refusal by PostgreSQL) is the same verdict at every retry: tried for ever, it held `/health`
 * not ready and its agent unjudged for good. Both the pull loop and the push writer now try it once
 * more, alone (its first write may have shared a batch with another agent's refused row), then give
 * it up (`RoundRefused`) and fail closed: the pull loop stores `internal.verifier.exception` in its
 * place. A write whose connection is cut (a TCP proxy) is still kept and retried until stored.
 */
describe('verdicts refused by PostgreSQL for their values are not retried for ever; a cut connection is retried (pull and push, real PostgreSQL)', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;
  let knex: Knex;
  let proxy: TcpProxy;
  let proxied: Database;
  const writers: RoundWriter[] = [];
  const stores: VerdictStore[] = [];
  const pushWriters: PushVerdictWriter[] = [];

  before(async function () {
    opened = await openMigratedTestSchema();
    knex = opened.database.knex;
    proxy = new TcpProxy();
    await proxy.start();
    proxied = await openSchemaThroughPort(knex, proxy.port);
  });

  after(async function () {
    for (const store of stores) store.close();
    for (const writer of pushWriters) await writer.close();
    for (const writer of writers) await writer.close();
    await proxied?.close();
    await proxy?.close();
    await opened?.dispose();
  });

  /** PostgreSQL refuses `agentId`'s history rows: only its passing ones, or all of them. */
  async function refuseHistoryOf(agentId: string, only: 'pass' | 'all'): Promise<void> {
    const name = `refuse_${agentId.replace(/[^a-z0-9]/g, '_')}`;
    const check = only === 'pass' ? `agent_id <> '${agentId}' or outcome <> 'pass'` : `agent_id <> '${agentId}'`;
    await knex.raw(`alter table verifier_attestation_history add constraint ${name} check (${check}) not valid`);
  }

  /** The pull loop's verdict store over the proxied database, batching its first writes for `batchDelayMs`. */
  function pullStore(health: VerifierHealth, batchDelayMs = 0): VerdictStore {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const writer = new RoundWriter(proxied.knex, { batchDelayMs, audit: { key: { privateKey, publicKey }, actor: 'instance-1' } });
    writers.push(writer);
    const repository = new VerifierAgentRepository(proxied.knex);
    const store = new VerdictStore({ repository, writer, health, verifierId: 'default', owner: OWNER, leaseSeconds: 30, log: pino({ level: 'silent' }) });
    stores.push(store);
    return store;
  }

  function persisterFor(store: VerdictStore, health: VerifierHealth, after: AfterRound): RoundPersister {
    const options = { repository: new VerifierAgentRepository(proxied.knex), writer: writers[writers.length - 1] as RoundWriter, health, verifierId: 'default', owner: OWNER, leaseSeconds: 30, round: ROUND_TEST_SETTINGS, log: pino({ level: 'silent' }) };
    return new RoundPersister(options, store, new FailureAnnouncer(undefined, () => []), after);
  }

  function agentIn(agentId: string): Promise<PolledAgent> {
    return polledAgentInGetQuote(knex, new VerifierAgentRepository(knex), agentId, OWNER);
  }

  const passingRound: PullDecision = { ...bareVerdict(OperationalState.GET_QUOTE, 1), retries: 0, next: { kind: 'poll', inSeconds: 2 } };

  /**
   * What `work` settles to, or 'still retrying' once `health` has been told of `count` failed writes
   * first: a refused verdict tried for ever never settles. The count stops being watched once `work` settles.
   */
  function settledOrRetrying<T>(work: Promise<T>, health: CountingHealth, count: number): Promise<T | 'still retrying'> {
    let settled = false;
    const watched = work.finally(() => (settled = true));
    const retrying = eventually(`${count} failed writes`, () => Promise.resolve(settled || health.failedWrites >= count), 30_000, 20).then(() => 'still retrying' as const);
    return Promise.race([watched, retrying]);
  }

  async function history(agentId: string): Promise<{ outcome: string; failures: string }[]> {
    const rows = (await knex('verifier_attestation_history').where({ agent_id: agentId }).orderBy('id').select('outcome', 'failures')) as { outcome: string; failures: unknown }[];
    return rows.map((row) => ({ outcome: row.outcome, failures: JSON.stringify(row.failures) }));
  }

  async function operationalState(agentId: string): Promise<number> {
    return ((await knex('verifier_agents').where({ agent_id: agentId }).first('operational_state')) as { operational_state: number }).operational_state;
  }

  it('pull: of two verdicts batched together, the refused one is given up after one retry alone and the other is stored; /health ready after', async function () {
    await refuseHistoryOf('refused-pull-2', 'pass');
    const health = new CountingHealth();
    const store = pullStore(health, 200);
    const [innocent, refused] = await Promise.all([agentIn('refused-pull-1'), agentIn('refused-pull-2')]);
    const results = Promise.all([
      store.store('refused-pull-1', passingRound, innocent, performance.now()),
      store.store('refused-pull-2', passingRound, refused, performance.now()),
    ]);
    expect(await settledOrRetrying(results, health, 8)).to.deep.equal([true, 'refused']);
    // The shared batch failed for both, then each was written alone: the innocent one stored, the refused one refused again.
    expect(health.failedWrites).to.equal(3);
    expect(health.unstoredRounds).to.equal(0);
    expect(health.problem()).to.equal(undefined);
    expect((await history('refused-pull-1')).map((row) => row.outcome)).to.deep.equal(['pass']);
    expect(await history('refused-pull-2')).to.deep.equal([]);
  });

  it('pull: a round whose verdict is refused fails its agent closed: internal.verifier.exception stored in its place, and polling stops', async function () {
    await refuseHistoryOf('refused-pull-3', 'pass');
    const health = new CountingHealth();
    const store = pullStore(health);
    const after = new RecordedAfterRound();
    const agent = await agentIn('refused-pull-3');
    const persisted = persisterFor(store, health, after).persist(agent, passingRound, performance.now());
    expect(await settledOrRetrying(persisted.then(() => 'persisted'), health, 8)).to.equal('persisted');
    const rows = await history('refused-pull-3');
    expect(rows.map((row) => row.outcome)).to.deep.equal(['fail']);
    expect(rows[0]?.failures).to.include('internal.verifier.exception');
    expect(await operationalState('refused-pull-3')).to.equal(OperationalState.FAILED);
    expect(agent.state.operationalState).to.equal(OperationalState.FAILED);
    expect(after.steps).to.deep.equal(['drop']);
    expect(health.unstoredRounds).to.equal(0);
  });

  it('pull: when the failure in its place is refused too, nothing is stored and the agent is judged again at its next round, /health ready', async function () {
    await refuseHistoryOf('refused-pull-4', 'all');
    const health = new CountingHealth();
    const store = pullStore(health);
    const after = new RecordedAfterRound();
    const agent = await agentIn('refused-pull-4');
    const persisted = persisterFor(store, health, after).persist(agent, passingRound, performance.now());
    expect(await settledOrRetrying(persisted.then(() => 'persisted'), health, 8)).to.equal('persisted');
    // The verdict twice (batched, then alone) and the failure in its place twice.
    expect(health.failedWrites).to.equal(4);
    expect(await history('refused-pull-4')).to.deep.equal([]);
    expect(await operationalState('refused-pull-4')).to.equal(OperationalState.GET_QUOTE);
    expect(agent.state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect(agent.running).to.equal(false);
    expect(after.steps).to.deep.equal(['schedule']);
    expect(health.problem()).to.equal(undefined);
  });

  it('pull: a verdict whose connection is cut is kept, /health not ready meanwhile, and stored once the database is back', async function () {
    const health = new CountingHealth();
    const store = pullStore(health);
    const agent = await agentIn('refused-pull-5');
    proxy.cut();
    const stored = store.store('refused-pull-5', passingRound, agent, performance.now());
    await eventually('two failed writes', () => Promise.resolve(health.failedWrites >= 2), 30_000, 20);
    expect(health.unstoredRounds).to.equal(1);
    proxy.restore();
    expect(await stored).to.equal(true);
    expect(health.unstoredRounds).to.equal(0);
    expect((await history('refused-pull-5')).map((row) => row.outcome)).to.deep.equal(['pass']);
  });

  describe('push verdict writer', function () {
    before(async function () {
      await seedVerifierAgents(knex, 3, 0);
      await knex('verifier_agents').where('agent_id', 'like', 'agent-%').update({ attestation_count: 0, operational_state: OperationalState.GET_QUOTE });
    });

    function pushWrite(agentId: string): RoundWrite {
      const { state, history: row } = bareVerdict(OperationalState.GET_QUOTE, 1);
      return { agentId, verifierId: 'default', owner: 'bench', leaseSeconds: 30, state, history: row };
    }

    function pushWriter(health: VerifierHealth, batchDelayMs = 0): PushVerdictWriter {
      const writer = pushVerdictWriterOn(proxied.knex, batchDelayMs, health);
      pushWriters.push(writer);
      return writer;
    }

    it('of two verdicts batched together, the refused one rejects RoundRefused after one retry alone and the other is stored; /health ready after', async function () {
      await refuseHistoryOf('agent-000002', 'pass');
      const health = new CountingHealth();
      const writer = pushWriter(health, 200);
      const results = Promise.all([writer.write(pushWrite('agent-000001')), writer.write(pushWrite('agent-000002')).catch((error: unknown) => error)]);
      const settled = await settledOrRetrying(results, health, 8);
      expect(settled).to.not.equal('still retrying');
      const [innocent, refused] = settled as [unknown, unknown];
      expect(innocent).to.deep.include({ stored: true });
      expect(refused).to.be.instanceOf(RoundRefused);
      expect(refused).to.include({ sqlState: '23514', message: "the database refused the verdict's values (SQLSTATE 23514)" });
      expect(health.failedWrites).to.equal(3);
      expect(health.problem()).to.equal(undefined);
      expect((await history('agent-000001')).map((row) => row.outcome)).to.deep.equal(['pass']);
      expect(await history('agent-000002')).to.deep.equal([]);
    });

    it('a verdict whose connection is cut is kept, /health not ready meanwhile, and stored once the database is back', async function () {
      const health = new CountingHealth();
      const writer = pushWriter(health);
      proxy.cut();
      const written = writer.write(pushWrite('agent-000003'));
      await eventually('two failed writes', () => Promise.resolve(health.failedWrites >= 2), 30_000, 20);
      expect(health.unstoredRounds).to.equal(1);
      proxy.restore();
      expect(await written).to.deep.include({ stored: true });
      expect(health.unstoredRounds).to.equal(0);
      expect((await history('agent-000003')).map((row) => row.outcome)).to.deep.equal(['pass']);
    });
  });
});
