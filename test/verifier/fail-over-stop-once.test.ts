import { expect } from 'chai';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { Database } from '../../lib/db/database-factory.js';
import type { FailureAnnouncer } from '../../lib/verifier/failure-announcer.js';
import { PushRepository } from '../../lib/verifier/push/push-repository.js';
import { PushVerdictStore } from '../../lib/verifier/push/push-verdict-store.js';
import type { PushVerdictWriter } from '../../lib/verifier/push/push-verdict-writer.js';
import type { RoundWrite } from '../../lib/verifier/round-writer.js';
import { storeRounds } from '../../lib/verifier/save-rounds.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { openMigratedTestSchema, openSchemaThroughPort, type OpenedDatabase } from '../helpers/databases.js';
import { backendPid, waitForLockWaiters } from '../helpers/lock-waits.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { bareVerdict } from './helpers/bare-verdict.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';
import { pushVerdictWriterOn } from './helpers/push-verdict-writer-on.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

/**
 * A FAIL meets an operator's stop: it is recorded over the stop once, and only when it was decided from
 * the row the operator stopped (`stopped_from_version`, consumed by the record). A retry whose first
 * attempt's COMMIT is still in flight, a second process's FAIL decided from the same row, or a FAIL
 * decided from a row older than the one stopped (a PASS stored between) is not recorded again.
 */
describe('a FAIL recorded over an operator stop, exactly once and only from the row stopped (real PostgreSQL)', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;
  let knex: Knex;
  let proxy: TcpProxy;
  let proxied: Database;
  let writers: PushVerdictWriter[] = [];
  let holder: Knex.Transaction | undefined;

  before(async function () {
    opened = await openMigratedTestSchema();
    knex = opened.database.knex;
    await seedVerifierAgents(knex, 1, 0);
    proxy = new TcpProxy();
    await proxy.start();
    proxied = await openSchemaThroughPort(knex, proxy.port);
  });

  afterEach(async function () {
    await holder?.rollback().catch(() => undefined);
    holder = undefined;
    for (const writer of writers) await writer.close().catch(() => undefined);
    writers = [];
  });

  after(async function () {
    await proxied?.close();
    await proxy?.close();
    await opened?.dispose();
  });

  function writerOn(on: Knex): PushVerdictWriter {
    const writer = pushVerdictWriterOn(on, 0);
    writers.push(writer);
    return writer;
  }

  function failWrite(agentId: string, expectedVersion: string): RoundWrite {
    return { agentId, verifierId: 'default', owner: 'bench', leaseSeconds: 30, ...bareVerdict(OperationalState.FAILED, 0), expectedVersion };
  }

  async function stop(agentId: string): Promise<void> {
    expect(await new VerifierAgentRepository(knex).stopByOperator(agentId, 'default', OperationalState.TENANT_FAILED)).to.equal(OperationalState.GET_QUOTE);
  }

  /** The FAIL's traces: history rows and audit verdict records. */
  async function recorded(agentId: string): Promise<{ fails: number; audited: number }> {
    const fails = await knex('verifier_attestation_history').where({ agent_id: agentId, outcome: 'fail' }).count<{ n: string }[]>({ n: '*' });
    const verdicts = (await knex('audit_records').where({ action: 'verdict', stream: agentId }).select('details')) as { details: string }[];
    return { fails: Number(fails[0]?.n), audited: verdicts.filter((v) => (JSON.parse(v.details) as { outcome: string }).outcome === 'fail').length };
  }

  it('M1: a retry while the first attempt\'s COMMIT is in flight records nothing again, and is told stored', async function () {
    const agentId = 'agent-000001';
    const expectedVersion = await agentRowVersion(knex, agentId);
    await stop(agentId);
    holder = await knex.transaction();
    const holderPid = await backendPid(holder);
    await holder.raw('select pg_advisory_xact_lock(?)', [holderPid]);
    await knex.raw(`create or replace function hold_commit() returns trigger language plpgsql as $$
      begin perform pg_advisory_xact_lock(${holderPid}); return null; end $$`);
    await knex.raw('create constraint trigger hold_commit after insert on verifier_attestation_history deferrable initially deferred for each row execute function hold_commit()');
    try {
      const outcome = writerOn(proxied.knex).write(failWrite(agentId, expectedVersion), undefined, undefined, true);
      await waitForLockWaiters(knex, holderPid, 1);
      // The COMMIT is held at the server; the verifier's connection breaks and the write is retried.
      proxy.cut();
      proxy.restore();
      await waitForLockWaiters(knex, holderPid, 2);
      await holder.commit();
      holder = undefined;
      expect(await outcome).to.deep.equal({ stored: true, agentVersion: undefined });
    } finally {
      await knex.raw('drop trigger if exists hold_commit on verifier_attestation_history');
    }
    expect(await recorded(agentId)).to.deep.equal({ fails: 1, audited: 1 });
    expect((await knex('verifier_agents').where({ agent_id: agentId }).first('operational_state')).operational_state).to.equal(OperationalState.TENANT_FAILED);
  });

  /**
   * A push agent's row as a verdict is decided from it, and the store both push verdicts go through
   * (`PushVerdictStore`) as process `owner` builds it: announcements are recorded in `announced`.
   */
  async function pushAgent(agentId: string): Promise<VerifierAgentRecord> {
    const agents = new VerifierAgentRepository(knex);
    await agents.insert(pullAgentEnrolment({ agentId, port: 9002, tpmPolicy: '{"mask": "0x400"}', akTpm: 'AAAA', mtlsCert: null, supportedVersion: '2.6' }), initialAgentState(OperationalState.GET_QUOTE), 'bench', 600);
    await knex('verifier_agents').update({ attestation_mode: 'push' }).where({ agent_id: agentId });
    return (await agents.find(agentId)) as VerifierAgentRecord;
  }

  function pushStoreOf(owner: string, announced: string[]): PushVerdictStore {
    // A notice is prepared for each FAIL and announced only for the one stored.
    const failures = {
      prepare: (record: VerifierAgentRecord) => ({ agentId: record.agentId }),
      stored: (prepared: { agentId: string } | undefined) => void (prepared === undefined ? undefined : announced.push(prepared.agentId)),
    } as unknown as FailureAnnouncer;
    return new PushVerdictStore({ repository: new PushRepository(knex), writer: writerOn(knex), failures, health: new VerifierHealth(), log: pino({ level: 'silent' }) }, { verifierId: 'default', owner, leaseSeconds: 30 });
  }

  async function leaseOf(agentId: string): Promise<unknown> {
    return knex('verifier_agents').where({ agent_id: agentId }).first('owner', 'lease_expires_at');
  }

  it('M2: a silence FAIL decided before a PASS stored before the stop is neither recorded nor announced over the stop', async function () {
    const agentId = 'push-stale-silence-fail';
    const read = await pushAgent(agentId);
    const pass: RoundWrite = { agentId, verifierId: 'default', owner: 'bench', leaseSeconds: 30, ...bareVerdict(OperationalState.GET_QUOTE, 1), expectedVersion: read.rowVersion };
    expect((await storeRounds(knex, [pass])).get(agentId)?.kind).to.equal('stored');
    await stop(agentId);
    const lease = await leaseOf(agentId);
    const announced: string[] = [];
    const { state, history } = bareVerdict(OperationalState.FAILED, 0);
    const outcome = await pushStoreOf('sweeper', announced).store(read, state, history, { expectedVersion: read.rowVersion as string });
    expect(outcome).to.deep.equal({ stored: false, reason: 'agent_changed' });
    expect(await recorded(agentId)).to.deep.equal({ fails: 0, audited: 0 });
    expect(announced).to.deep.equal([]);
    expect(await leaseOf(agentId), 'the stopped row not taken over').to.deep.equal(lease);
  });

  it('M2: of two processes\' FAILs decided from the row stopped, one is recorded and announced; the stopped row is not taken over', async function () {
    const agentId = 'push-two-fails';
    const read = await pushAgent(agentId);
    await stop(agentId);
    const lease = await leaseOf(agentId);
    holder = await knex.transaction();
    const holderPid = await backendPid(holder);
    await holder('verifier_agents').where({ agent_id: agentId }).forUpdate().select('agent_id');
    const announced: string[] = [];
    const { state, history } = bareVerdict(OperationalState.FAILED, 0);
    const outcomes = Promise.all(['process-1', 'process-2'].map((owner) => pushStoreOf(owner, announced).store(read, state, history, { expectedVersion: read.rowVersion as string })));
    await waitForLockWaiters(knex, holderPid, 2);
    await holder.commit();
    holder = undefined;
    expect((await outcomes).map((outcome) => outcome.stored).sort()).to.deep.equal([false, true]);
    expect(await recorded(agentId)).to.deep.equal({ fails: 1, audited: 1 });
    expect(announced).to.deep.equal([agentId]);
    expect(await leaseOf(agentId), 'the stopped row not taken over').to.deep.equal(lease);
  });
});
