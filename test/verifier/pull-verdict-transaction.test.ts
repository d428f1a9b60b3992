import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import type { HistoryRow } from '../../lib/attestation/history-row.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { AuditLog } from '../../lib/audit/audit-log.js';
import type { AuditEvent } from '../../lib/audit/audit-record.js';
import { verifyAuditChain } from '../../lib/audit/audit-chain.js';
import { fixedStatement } from '../../lib/db/fixed-statement.js';
import { migrateLatest } from '../../lib/db/migrate.js';
import { RoundWriter, type RoundWrite } from '../../lib/verifier/round-writer.js';
import { exportCollected } from '../audit/helpers/sealed-export.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { answeredStatements } from '../helpers/rows-read.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const key = { privateKey, publicKey };
const PASS: HistoryRow = { outcome: 'pass', nonce: 'n', imaMlEntry: 0, imaEntriesReceived: 1, failures: [] };
const FAIL: HistoryRow = {
  outcome: 'fail',
  nonce: 'n',
  imaMlEntry: 0,
  imaEntriesReceived: 1,
  failures: [{ event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'emergency', context: { message: 'File not found in allowlist: /usr/bin/nc' }, recoverable: false }],
};
const RETRY: HistoryRow = { outcome: 'retry', nonce: null, imaMlEntry: null, imaEntriesReceived: null, failures: [] };
const BACKEND_PID = fixedStatement('test_backend_pid', 'select pg_backend_pid() as pid');

function round(agentId: string, count: number, history: HistoryRow): RoundWrite {
  const state = history.outcome === 'fail' ? OperationalState.FAILED : OperationalState.GET_QUOTE;
  return { agentId, verifierId: 'default', owner: 'bench', leaseSeconds: 30, state: { ...initialAgentState(state), attestationCount: count }, history };
}

function operatorRecord(stream: string): AuditEvent {
  return { stream, at: new Date().toISOString(), actor: 'admin', action: 'update', agentId: stream, details: {} };
}

/**
 * The pull verdicts' transaction: BEGIN, the rounds with the lock of their audit heads in one
 * statement, the records, COMMIT; what the five round trips stored, and the chain one line when
 * other transactions append to the same streams meanwhile.
 */
describe("pull verdicts' transaction: the rounds and their audit heads' lock in one statement", function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;

  beforeEach(async function () {
    opened = await openTestSchema();
    await migrateLatest(opened.database.knex);
    await seedVerifierAgents(opened.database.knex, 3, 0);
  });

  afterEach(async function () {
    await opened?.dispose();
  });

  /** The statements the database answered while `work` ran, each as its first three words. */
  function statementsDuring(work: () => Promise<unknown>): Promise<string[]> {
    return answeredStatements(opened.database.knex, (sql) => sql.split(/\s+/).slice(0, 3).join(' '), work);
  }

  for (const [prepared, how] of [[false, 'knex'], [true, 'prepared']] as const) {
    it(`a batch of a PASS, a FAIL and a retry: two statements between BEGIN and COMMIT, the rows and records as before (${how})`, async function () {
      const knex = opened.database.knex;
      // Another writer's record comes first in the first agent's stream: the verdict's is chained after it.
      const earlier = await new AuditLog(knex, key).append(operatorRecord('agent-000001'));
      const writer = new RoundWriter(knex, { audit: { key, actor: 'instance-1' }, prepared, batchDelayMs: 50 });
      let stored: boolean[] = [];
      const statements = await statementsDuring(async () => {
        stored = await Promise.all([writer.write(round('agent-000001', 5, PASS)), writer.write(round('agent-000002', 3, FAIL)), writer.write(round('agent-000003', 1, RETRY))]);
      });
      expect(stored).to.deep.equal([true, true, true]);
      // Before: the rounds, the heads' lock (`insert into audit_heads`), the records. Knex does not tell
      // its listeners about its own BEGIN and COMMIT; the prepared path does.
      const between = prepared ? statements.slice(1, -1) : statements;
      if (prepared) expect([statements[0], statements.at(-1)]).to.deep.equal(['begin', 'commit']);
      expect(between).to.deep.equal(['with input as', 'with input as']);

      const agents = (await knex('verifier_agents').orderBy('agent_id').select('agent_id', 'operational_state', 'attestation_count')) as unknown[];
      expect(agents).to.deep.equal([
        { agent_id: 'agent-000001', operational_state: OperationalState.GET_QUOTE, attestation_count: 5 },
        { agent_id: 'agent-000002', operational_state: OperationalState.FAILED, attestation_count: 3 },
        { agent_id: 'agent-000003', operational_state: OperationalState.GET_QUOTE, attestation_count: 1 },
      ]);
      const history = (await knex('verifier_attestation_history').orderBy('agent_id').select('agent_id', 'outcome', 'attestation_count')) as unknown[];
      expect(history).to.deep.equal([
        { agent_id: 'agent-000001', outcome: 'pass', attestation_count: 5 },
        { agent_id: 'agent-000002', outcome: 'fail', attestation_count: 3 },
        { agent_id: 'agent-000003', outcome: 'retry', attestation_count: 1 },
      ]);
      const { records: first } = await exportCollected(knex, key, { stream: 'agent-000001' });
      expect(first.map((r) => [r.seq, r.action, r.actor])).to.deep.equal([
        [1, 'update', 'admin'],
        [2, 'verdict', 'verifier:instance-1'],
      ]);
      expect(first[1]?.prevHash).to.equal(earlier.hash);
      expect(verifyAuditChain(first, publicKey).valid).to.equal(true);
      const { records: second } = await exportCollected(knex, key, { stream: 'agent-000002' });
      expect(second.map((r) => [r.seq, r.details['outcome']])).to.deep.equal([[1, 'fail']]);
      expect(verifyAuditChain(second, publicKey).valid).to.equal(true);
      // A retry gets no record, and no head is made for its stream.
      expect(await knex('audit_heads').orderBy('stream').select('stream', 'seq')).to.deep.equal([
        { stream: 'agent-000001', seq: '2' },
        { stream: 'agent-000002', seq: '1' },
      ]);
      await writer.close();
    });
  }

  it('fails closed when the heads cannot be locked: the rounds in that statement are not stored either, and the write rejects (kept and retried by the loop)', async function () {
    const knex = opened.database.knex;
    await knex.raw('alter table audit_heads rename to audit_heads_away');
    const writer = new RoundWriter(knex, { audit: { key, actor: 'instance-1' }, prepared: true, batchDelayMs: 0 });
    let refused: unknown;
    await writer.write(round('agent-000001', 9, PASS)).catch((error: unknown) => (refused = error));
    expect(refused).to.be.instanceOf(Error);
    expect(await knex('verifier_agents').where({ agent_id: 'agent-000001' }).first('attestation_count')).to.deep.equal({ attestation_count: 1 });
    expect(await knex('verifier_attestation_history').count({ n: '*' })).to.deep.equal([{ n: '0' }]);
    await knex.raw('alter table audit_heads_away rename to audit_heads');
    expect(await writer.write(round('agent-000001', 9, PASS), true)).to.equal(true);
    expect(await knex('audit_records').where({ stream: 'agent-000001' }).count({ n: '*' })).to.deep.equal([{ n: '1' }]);
    await writer.close();
  });

  it('two verdicts of one agent in one batch: a rounds statement each, one records statement, the two records chained one after the other', async function () {
    const knex = opened.database.knex;
    const writer = new RoundWriter(knex, { audit: { key, actor: 'instance-1' }, prepared: true, batchDelayMs: 50 });
    let stored: boolean[] = [];
    const statements = await statementsDuring(async () => {
      stored = await Promise.all([writer.write(round('agent-000001', 1, PASS)), writer.write(round('agent-000001', 2, FAIL))]);
    });
    expect(stored).to.deep.equal([true, true]);
    expect(statements).to.deep.equal(['begin', 'with input as', 'with input as', 'with input as', 'commit']);
    const { records } = await exportCollected(knex, key, { stream: 'agent-000001' });
    expect(records.map((r) => [r.seq, r.details['outcome'], r.details['attestation_count']])).to.deep.equal([
      [1, 'pass', 1],
      [2, 'fail', 2],
    ]);
    expect(verifyAuditChain(records, publicKey).valid).to.equal(true);
    expect(await knex('audit_heads').select('stream', 'seq')).to.deep.equal([{ stream: 'agent-000001', seq: '2' }]);
    await writer.close();
  });

  it("two writers' batches and an operator's record for one agent while the first batch holds its locks: every write stored, the stream one unbroken chain", async function () {
    const knex = opened.database.knex;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let blocker: number | undefined;
    // The first writer's transaction stays open after its records, holding the agent's row and its head.
    const holding = new RoundWriter(knex, {
      audit: { key, actor: 'instance-1' },
      prepared: true,
      batchDelayMs: 0,
      alsoStore: async (run) => {
        blocker = ((await run(BACKEND_PID, [])) as { pid: number }[])[0]?.pid;
        await gate;
      },
    });
    const other = new RoundWriter(knex, { audit: { key, actor: 'instance-2' }, prepared: true, batchDelayMs: 0 });
    const log = new AuditLog(knex, key);
    await log.append(operatorRecord('agent-000001'));

    const first = holding.write(round('agent-000001', 2, PASS));
    while (blocker === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
    // Both wait for the first transaction: the second writer's rounds statement for the agent's row,
    // the operator's record for the head. Each reads the head once the first has committed.
    const second = other.write(round('agent-000001', 3, PASS));
    const operator = log.append(operatorRecord('agent-000001'));
    await waitersOn(blocker, 2);
    release();
    expect(await Promise.all([first, second])).to.deep.equal([true, true]);
    await operator;

    const { records } = await exportCollected(knex, key, { stream: 'agent-000001' });
    expect(records.map((r) => r.seq)).to.deep.equal([1, 2, 3, 4]);
    expect(records.filter((r) => r.action === 'verdict').map((r) => r.actor)).to.have.members(['verifier:instance-1', 'verifier:instance-2']);
    expect(verifyAuditChain(records, publicKey).valid).to.equal(true);
    const head = (await knex('audit_heads').where({ stream: 'agent-000001' }).first('seq', 'hash')) as { seq: string; hash: string };
    expect(head).to.deep.equal({ seq: '4', hash: records[3]?.hash });
    expect(await knex('verifier_attestation_history').where({ agent_id: 'agent-000001' }).count({ n: '*' })).to.deep.equal([{ n: '2' }]);
    await Promise.all([holding.close(), other.close()]);
  });

  /** Waits (up to 5 s) until `count` statements of this database wait for a lock the backend `pid` holds. */
  async function waitersOn(pid: number, count: number): Promise<void> {
    for (let tries = 0; tries < 250; tries += 1) {
      const result = (await opened.database.knex.raw(
        `select count(*)::int as n from pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock' and pg_blocking_pids(pid) @> array[?::int]`,
        [pid],
      )) as { rows: { n: number }[] };
      if ((result.rows[0]?.n ?? 0) >= count) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`fewer than ${count} statements waited for backend ${pid} within 5 s`);
  }
});
