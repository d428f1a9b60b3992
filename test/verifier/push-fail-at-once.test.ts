import { expect } from 'chai';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import type { HistoryRow } from '../../lib/attestation/history-row.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { FailureAnnouncer } from '../../lib/verifier/failure-announcer.js';
import { PushVerdictStore } from '../../lib/verifier/push/push-verdict-store.js';
import type { PushVerdictWriter, PushWriteOutcome } from '../../lib/verifier/push/push-verdict-writer.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { pushVerdictWriterOn } from './helpers/push-verdict-writer-on.js';

/** A batch window long enough that "waited for it" and "did not" cannot be confused. */
const WINDOW_MS = 3_000;

function history(outcome: 'pass' | 'fail'): HistoryRow {
  return { outcome, nonce: null, imaMlEntry: null, imaEntriesReceived: null, failures: [] };
}

/**
 * A push verdict that turns its agent failed is stored at once, alone, as the pull loop's is (real
 * PostgreSQL): its detection and revocation notice do not wait for passes to share a transaction. A
 * failed push agent keeps attesting; its later failures wait for the window like passes.
 */
describe('push verdicts: the failing transition stored at once, passes and repeated failures wait for the batch window (real PostgreSQL)', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let knex: Knex;
  let writer: PushVerdictWriter;
  let store: PushVerdictStore;

  before(async function () {
    opened = await openMigratedTestSchema();
    knex = opened.database.knex;
    await seedVerifierAgents(knex, 2, 0);
    writer = pushVerdictWriterOn(knex, WINDOW_MS);
    store = storeOn(writer);
  });

  function storeOn(through: PushVerdictWriter): PushVerdictStore {
    return new PushVerdictStore(
      { repository: { takeOwnership: () => Promise.resolve(true) }, writer: through, failures: new FailureAnnouncer(undefined, () => []), health: new VerifierHealth(), log: pino({ level: 'silent' }) },
      { verifierId: 'default', owner: 'bench', leaseSeconds: 30 },
    );
  }

  after(async function () {
    await writer?.close();
    await opened?.dispose();
  });

  async function outcomes(): Promise<string[]> {
    const rows = (await knex('verifier_attestation_history').select('agent_id', 'outcome').orderBy(['agent_id', 'id'])) as { agent_id: string; outcome: string }[];
    return rows.map((row) => `${row.agent_id} ${row.outcome}`);
  }

  /**
   * What the store reads of an agent's record (its owner and stored state), from the row as stored now:
   * the seeded rows are the dashboard's, whose IMA state a full record read refuses.
   */
  async function record(agentId: string): Promise<VerifierAgentRecord> {
    const row = (await knex('verifier_agents').select('operational_state', 'attestation_count').where({ agent_id: agentId }).first()) as { operational_state: OperationalState; attestation_count: number };
    const state = { ...initialAgentState(row.operational_state), attestationCount: row.attestation_count };
    return { agentId, owner: 'bench', state } as unknown as VerifierAgentRecord;
  }

  /**
   * Starts `agentId`'s verdict through the store, decided from its row as stored now; `stored` resolves to
   * the outcome and when it came (wrapped, so awaiting the start does not wait for the store).
   */
  async function judge(agentId: string, outcome: 'pass' | 'fail', on = store): Promise<{ stored: Promise<{ outcome: PushWriteOutcome; at: number }> }> {
    const read = await record(agentId);
    const state = { ...initialAgentState(outcome === 'pass' ? OperationalState.GET_QUOTE : OperationalState.FAILED), attestationCount: read.state.attestationCount + (outcome === 'pass' ? 1 : 0) };
    const expectedVersion = await agentRowVersion(knex, agentId);
    return { stored: on.store(read, state, history(outcome), { expectedVersion }).then((stored) => ({ outcome: stored, at: Date.now() })) };
  }

  it('stores the failure that fails an agent at once, while a pass and a failed agent\'s next failure wait for the window', async function () {
    expect((await record('agent-000002')).state.operationalState).to.not.equal(OperationalState.FAILED);
    // The pass beside the failure on a 20 s window, which its writer's close ends: "at once" (a third of it)
    // stays far apart from it with room for a CI host that stalls this process for ~3 s (with 3 s, it did not).
    const longWindowMs = 20_000;
    const longWriter = pushVerdictWriterOn(knex, longWindowMs);
    const longStore = storeOn(longWriter);
    let started = Date.now();
    const pass = (await judge('agent-000001', 'pass', longStore)).stored;
    const failing = await (await judge('agent-000002', 'fail', longStore)).stored;
    expect(failing.outcome.stored).to.equal(true);
    expect(failing.at - started, 'the failing transition stored at once').to.be.below(longWindowMs / 3);
    expect(await outcomes(), 'the pass still waiting for the window').to.deep.equal(['agent-000002 fail']);
    await longWriter.close();
    const passed = await pass;
    expect(passed.outcome.stored, 'the pass stored when the writer closed').to.equal(true);

    expect((await record('agent-000002')).state.operationalState).to.equal(OperationalState.FAILED);
    started = Date.now();
    const again = await (await judge('agent-000002', 'fail')).stored;
    expect(again.outcome.stored).to.equal(true);
    expect(again.at - started, 'a failed agent\'s next failure waits for the window').to.be.at.least(WINDOW_MS - 50);
    expect(await outcomes()).to.deep.equal(['agent-000001 pass', 'agent-000002 fail', 'agent-000002 fail']);
  });
});
