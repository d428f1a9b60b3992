import { expect } from 'chai';
import type { Knex } from 'knex';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import type { HistoryRow } from '../../lib/attestation/history-row.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { Database } from '../../lib/db/database-factory.js';
import { PushVerdictWriter } from '../../lib/verifier/push/push-verdict-writer.js';
import type { RoundWrite } from '../../lib/verifier/round-writer.js';
import { openMigratedTestSchema, openSchemaThroughPort, type OpenedDatabase } from '../helpers/databases.js';
import { backendPid, waitForLockWaiters } from '../helpers/lock-waits.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { pushVerdictWriterOn } from './helpers/push-verdict-writer-on.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

const AGENT = 'agent-000001';

/**
 * A push verdict's COMMIT reaches PostgreSQL and is held there (a deferred trigger waits for a lock the
 * test holds) when the verifier's connection breaks: the writer is told the write failed, asks the
 * history for the verdict's round id (not there yet) and writes again; that write waits on the row the
 * held COMMIT locks. The test then lets the COMMIT through: the retry finds the row moved by its own
 * verdict. Asked again, the history holds the round: the verdict is stored (and its caller announces
 * it), not refused.
 */
describe('push verdict writer: a verdict whose COMMIT, its connection lost, lands while the retry waits (real PostgreSQL)', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;
  let proxy: TcpProxy;
  let proxied: Database;
  let writer: PushVerdictWriter;
  let holder: Knex.Transaction | undefined;

  before(async function () {
    opened = await openMigratedTestSchema();
    const knex = opened.database.knex;
    await seedVerifierAgents(knex, 1, 0);
    proxy = new TcpProxy();
    await proxy.start();
    proxied = await openSchemaThroughPort(knex, proxy.port);
    writer = pushVerdictWriterOn(proxied.knex, 0);
  });

  after(async function () {
    await holder?.rollback().catch(() => undefined);
    await writer?.close().catch(() => undefined);
    await proxied?.close();
    await proxy?.close();
    await opened?.dispose();
  });

  it('counts as stored the silence FAIL its own late COMMIT stored (stored once, its row version unknown)', async function () {
    const knex = opened.database.knex;
    const expectedVersion = await agentRowVersion(knex, AGENT);
    holder = await knex.transaction();
    const holderPid = await backendPid(holder);
    // Unique while the test runs: no other live backend has this pid, so no other test takes this key.
    const lockKey = holderPid;
    await holder.raw('select pg_advisory_xact_lock(?)', [lockKey]);
    await knex.raw(`create function hold_commit() returns trigger language plpgsql as $$
      begin perform pg_advisory_xact_lock(${lockKey}); return null; end $$`);
    await knex.raw('create constraint trigger hold_commit after insert on verifier_attestation_history deferrable initially deferred for each row execute function hold_commit()');

    const history: HistoryRow = { outcome: 'fail', nonce: null, imaMlEntry: null, imaEntriesReceived: null, failures: [] };
    const write: RoundWrite = {
      agentId: AGENT, verifierId: 'default', owner: 'bench', leaseSeconds: 30,
      state: { ...initialAgentState(OperationalState.FAILED), attestationCount: 1 }, history, expectedVersion,
    };
    const outcome = writer.write(write);
    await waitForLockWaiters(knex, holderPid, 1);
    // The COMMIT is held at the server: the verifier's connection breaks, the server goes on.
    proxy.cut();
    proxy.restore();
    await waitForLockWaiters(knex, holderPid, 2);
    await holder.commit();
    holder = undefined;

    expect(await outcome).to.deep.equal({ stored: true, agentVersion: undefined });
    const rows = (await knex('verifier_attestation_history').where({ agent_id: AGENT }).select('outcome')) as { outcome: string }[];
    expect(rows).to.deep.equal([{ outcome: 'fail' }]);
    const agent = (await knex('verifier_agents').where({ agent_id: AGENT }).first('operational_state')) as { operational_state: number };
    expect(agent.operational_state).to.equal(OperationalState.FAILED);
  });
});
