import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import type { HistoryRow } from '../../lib/attestation/history-row.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { Database } from '../../lib/db/database-factory.js';
import { RoundRetrier, STORED_UNSEEN } from '../../lib/verifier/round-retrier.js';
import { RoundWriter, type RoundWrite } from '../../lib/verifier/round-writer.js';
import type { StoredRound } from '../../lib/verifier/save-rounds.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { openSchemaThroughPort, openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { CommitReplyDropper } from './helpers/commit-reply-dropper.js';
import { eventually } from './helpers/verifier-fixture.js';

const PASS: HistoryRow = { outcome: 'pass', nonce: null, imaMlEntry: null, imaEntriesReceived: null, failures: [] };
const FAIL: HistoryRow = { ...PASS, outcome: 'fail' };

/**
 * The round retrier, the one check behind both the pull loop's and the push model's verdicts, on a
 * real round writer (the service's statement and audit records) reached through a proxy that can lose
 * a COMMIT's reply: a write that fails is retried and never taken as done, and a write whose COMMIT
 * landed with its reply lost is found by its round id — stored once, neither written again (a second
 * history row, the `pass` rows no longer equal to `attestation_count`) nor refused by itself.
 */
describe('round retrier: a retried verdict is stored exactly once (real PostgreSQL)', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let knex: Knex;
  let proxy: CommitReplyDropper;
  let proxied: Database;
  let writer: RoundWriter;
  let health: VerifierHealth;
  let retrier: RoundRetrier;

  before(async function () {
    opened = await openMigratedTestSchema();
    knex = opened.database.knex;
    await seedVerifierAgents(knex, 3, 0);
    await knex('verifier_agents').update({ attestation_count: 0, operational_state: OperationalState.GET_QUOTE });
    proxy = new CommitReplyDropper();
    await proxy.start();
    proxied = await openSchemaThroughPort(knex, proxy.port);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    writer = new RoundWriter(proxied.knex, { batchDelayMs: 0, audit: { key: { privateKey, publicKey }, actor: 'instance-1' } });
    health = new VerifierHealth();
    retrier = new RoundRetrier({
      rounds: new VerifierAgentRepository(proxied.knex),
      backoff: { initialDelayMs: 50, maxDelayMs: 200 },
      health,
      log: pino({ level: 'silent' }),
    });
  });

  after(async function () {
    retrier?.close();
    await writer?.close();
    await proxied?.close();
    await proxy?.close();
    await opened?.dispose();
  });

  /** Stores `history` with a state one attestation on (over `expectedVersion` when given) through `using`. */
  function store(agentId: string, history: HistoryRow, expectedVersion?: string, using = retrier): Promise<StoredRound | undefined | typeof STORED_UNSEEN> {
    const state = { ...initialAgentState(history.outcome === 'pass' ? OperationalState.GET_QUOTE : OperationalState.FAILED), attestationCount: 1 };
    const write: RoundWrite = { agentId, verifierId: 'default', owner: 'bench', leaseSeconds: 30, state, history, expectedVersion };
    return using.store({
      agentId,
      history,
      send: (roundId, retry) => writer.writeReturningOutcome({ ...write, roundId }, retry),
      stored: (version) => version !== undefined,
    });
  }

  /** The agent's history outcomes, its `attestation_count` and its `pass` rows. */
  async function stored(agentId: string): Promise<{ outcomes: string[]; attestationCount: number; passes: number }> {
    const rows = (await knex('verifier_attestation_history').where({ agent_id: agentId }).orderBy('id').select('outcome')) as { outcome: string }[];
    const agent = (await knex('verifier_agents').where({ agent_id: agentId }).first('attestation_count')) as { attestation_count: number };
    const outcomes = rows.map((row) => row.outcome);
    return { outcomes, attestationCount: agent.attestation_count, passes: outcomes.filter((o) => o === 'pass').length };
  }

  it('a PASS whose COMMIT reply is lost, written whatever the row: stored once, history rows equal to attestation_count', async function () {
    const dropped = proxy.dropped;
    proxy.dropNextCommitReplyAfter('expected_version text');
    const result = await store('agent-000001', PASS);
    expect(proxy.dropped).to.equal(dropped + 1);
    expect(await stored('agent-000001')).to.deep.equal({ outcomes: ['pass'], attestationCount: 1, passes: 1 });
    expect(result).to.equal(STORED_UNSEEN);
    expect(health.unstoredRounds).to.equal(0);
  });

  it('a FAIL whose COMMIT reply is lost, written over the row version it was decided from: stored, not refused by itself', async function () {
    const dropped = proxy.dropped;
    const expectedVersion = await agentRowVersion(knex, 'agent-000002');
    proxy.dropNextCommitReplyAfter('expected_version text');
    expect(await store('agent-000002', FAIL, expectedVersion)).to.equal(STORED_UNSEEN);
    expect(proxy.dropped).to.equal(dropped + 1);
    expect(await stored('agent-000002')).to.deep.equal({ outcomes: ['fail'], attestationCount: 1, passes: 0 });
  });

  it('a write that fails is retried with back-off, the verifier not ready meanwhile, and stored once when the database accepts it', async function () {
    await knex.raw(`create function refuse_history() returns trigger language plpgsql as $$
      begin raise exception 'history rows refused by the test'; end $$`);
    await knex.raw('create trigger refuse_history before insert on verifier_attestation_history for each row execute function refuse_history()');
    const watched = new VerifierHealth();
    let failures = 0;
    const counting = new RoundRetrier({
      rounds: new VerifierAgentRepository(proxied.knex),
      backoff: { initialDelayMs: 50, maxDelayMs: 200 },
      health: watched,
      log: pino({ level: 'silent' }),
      onWriteFailed: () => (failures += 1),
    });
    const version = store('agent-000003', PASS, undefined, counting);
    await eventually('three failed writes', () => Promise.resolve(failures >= 3), 10_000, 20);
    expect(watched.unstoredRounds).to.equal(1);
    await knex.raw('drop trigger refuse_history on verifier_attestation_history');
    expect(await version).to.deep.equal({ kind: 'stored', version: await agentRowVersion(knex, 'agent-000003') });
    expect(watched.unstoredRounds).to.equal(0);
    expect(await stored('agent-000003')).to.deep.equal({ outcomes: ['pass'], attestationCount: 1, passes: 1 });
  });
});
