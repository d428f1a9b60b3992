import { expect } from 'chai';
import type { Knex } from 'knex';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { migrateLatest } from '../../lib/db/migrate.js';
import type { PushVerdictWriter } from '../../lib/verifier/push/push-verdict-writer.js';
import type { RoundWrite } from '../../lib/verifier/round-writer.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { pushVerdictWriterOn } from './helpers/push-verdict-writer-on.js';

/** A batch window long enough that "waited for it" and "did not" cannot be confused. */
const WINDOW_MS = 3_000;

function verdict(agentId: string, outcome: 'pass' | 'fail'): RoundWrite {
  const state = outcome === 'pass' ? OperationalState.GET_QUOTE : OperationalState.FAILED;
  return {
    agentId,
    verifierId: 'default',
    owner: 'bench',
    leaseSeconds: 30,
    state: { ...initialAgentState(state), attestationCount: 1 },
    history: { outcome, nonce: null, imaMlEntry: null, imaEntriesReceived: null, failures: [] },
  };
}

/**
 * A push verdict that fails its agent is stored at once, alone, as the pull loop's is (real
 * PostgreSQL): its detection and revocation notice do not wait for passes to share a transaction.
 */
describe('push verdicts: a failure stored at once, a pass waits for the batch window (real PostgreSQL)', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let knex: Knex;
  let writer: PushVerdictWriter;

  before(async function () {
    opened = await openTestSchema();
    knex = opened.database.knex;
    await migrateLatest(knex);
    await seedVerifierAgents(knex, 2, 0);
    writer = pushVerdictWriterOn(knex, WINDOW_MS);
  });

  after(async function () {
    await writer?.close();
    await opened?.dispose();
  });

  async function outcomes(): Promise<string[]> {
    const rows = (await knex('verifier_attestation_history').select('agent_id', 'outcome').orderBy('agent_id')) as { agent_id: string; outcome: string }[];
    return rows.map((row) => `${row.agent_id} ${row.outcome}`);
  }

  it('stores a failure decided beside a pass within a second, while the pass waits for the window', async function () {
    const started = Date.now();
    let passStoredAt: number | undefined;
    const pass = writer.write(verdict('agent-000001', 'pass')).then((outcome) => ((passStoredAt = Date.now()), outcome));
    expect((await writer.write(verdict('agent-000002', 'fail'))).stored).to.equal(true);
    expect(Date.now() - started, 'the failure stored within a second').to.be.below(1_000);
    expect(passStoredAt, 'the pass still waiting when the failure was stored').to.equal(undefined);
    expect(await outcomes()).to.deep.equal(['agent-000002 fail']);
    expect((await pass).stored).to.equal(true);
    expect((passStoredAt as number) - started, 'the pass stored after the window').to.be.at.least(WINDOW_MS - 50);
    expect(await outcomes()).to.deep.equal(['agent-000001 pass', 'agent-000002 fail']);
  });
});
