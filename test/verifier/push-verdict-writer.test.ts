import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import type { HistoryRow } from '../../lib/attestation/history-row.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { insertOpenAttestations, pushVerdictWriterOn } from './helpers/push-verdict-writer-on.js';
import { PushVerdictWriter } from '../../lib/verifier/push/push-verdict-writer.js';
import type { RoundWrite } from '../../lib/verifier/round-writer.js';
import { storeRounds } from '../../lib/verifier/save-rounds.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { backendPid, waitForLockWaiters } from '../helpers/lock-waits.js';

const PASS: HistoryRow = { outcome: 'pass', nonce: null, imaMlEntry: 0, imaEntriesReceived: 1, failures: [] };
const COMPLETE = { index: 0, evaluation: 'pass', failureReason: null } as const;

function verdict(agentId: string, count: number): RoundWrite {
  return { agentId, verifierId: 'default', owner: 'bench', leaseSeconds: 30, state: { ...initialAgentState(OperationalState.GET_QUOTE), attestationCount: count }, history: PASS };
}

/** The silence sweep's FAIL of another process, decided from the row of version `expectedVersion` (same owner: two processes sharing a data directory). */
function silenceFail(agentId: string, expectedVersion: string): RoundWrite {
  const history: HistoryRow = { outcome: 'fail', nonce: null, imaMlEntry: null, imaEntriesReceived: null, failures: [] };
  return { ...verdict(agentId, 1), state: { ...initialAgentState(OperationalState.FAILED), attestationCount: 1 }, history, expectedVersion };
}

describe('push verdict writer: the evidence take, the completion and the retries of a batch', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;

  beforeEach(async function () {
    opened = await openMigratedTestSchema();
    await seedVerifierAgents(opened.database.knex, 2, 0);
    await insertOpenAttestations(opened.database.knex, ['agent-000001', 'agent-000002'], 'evaluating_evidence');
  });

  afterEach(async function () {
    await opened?.dispose();
  });

  function writerOf(knex: OpenedDatabase['database']['knex'], batchDelayMs: number, health = new VerifierHealth()): PushVerdictWriter {
    return pushVerdictWriterOn(knex, batchDelayMs, health);
  }

  async function versionOf(agentId: string): Promise<string> {
    return agentRowVersion(opened.database.knex, agentId);
  }

  async function countOf(agentId: string): Promise<number> {
    return ((await opened.database.knex('verifier_agents').where({ agent_id: agentId }).first()) as { attestation_count: number }).attestation_count;
  }

  it('close() sends the waiting verdicts at once (not after the batch delay), resolves once each is stored, and refuses later ones', async function () {
    const knex = opened.database.knex;
    // A batch delay far beyond the test's timeout: only close() can send these.
    const writer = writerOf(knex, 600_000);
    const writes = [writer.write(verdict('agent-000001', 7), COMPLETE), writer.write(verdict('agent-000002', 8), COMPLETE)];
    await writer.close();
    const outcomes = await Promise.all(writes);
    expect(outcomes.map((o) => o.stored)).to.deep.equal([true, true]);
    // Each answers the version of its agent's row after the verdict: what the next phase 1 inserts against.
    expect(outcomes.map((o) => (o.stored ? o.agentVersion : undefined))).to.deep.equal([await versionOf('agent-000001'), await versionOf('agent-000002')]);
    const agents = (await knex('verifier_agents').select('agent_id', 'attestation_count').orderBy('agent_id')) as { agent_id: string; attestation_count: number }[];
    expect(agents.map((row) => row.attestation_count)).to.deep.equal([7, 8]);
    const completed = (await knex('verifier_push_attestations').select('stage', 'evaluation').orderBy('agent_id')) as { stage: string; evaluation: string }[];
    expect(completed).to.deep.equal([
      { stage: 'verification_complete', evaluation: 'pass' },
      { stage: 'verification_complete', evaluation: 'pass' },
    ]);
    expect(await knex('audit_records').count({ n: '*' })).to.deep.equal([{ n: '2' }]);
    const late = await writer.write(verdict('agent-000001', 9)).catch((error: unknown) => error);
    expect(late).to.be.instanceOf(Error);
    expect(((await knex('verifier_agents').where({ agent_id: 'agent-000001' }).first()) as { attestation_count: number }).attestation_count).to.equal(7);
  });

  it('stores a verdict that still needs its evidence only if the take succeeds; the other verdicts of the batch are stored', async function () {
    const knex = opened.database.knex;
    await knex('verifier_push_attestations').update({ stage: 'awaiting_evidence' });
    const writer = writerOf(knex, 50);
    const take = async (agentId: string, challenge: string) => ({ agentId, index: 0, challenge, receivedAt: new Date(), agentVersion: await versionOf(agentId) });
    const [wrongChallenge, good] = await Promise.all([
      writer.write(verdict('agent-000001', 7), COMPLETE, await take('agent-000001', 'not the challenge')),
      writer.write(verdict('agent-000002', 8), COMPLETE, await take('agent-000002', 'c')),
    ]);
    expect(wrongChallenge).to.deep.equal({ stored: false, reason: 'evidence_not_taken' });
    expect(good.stored).to.equal(true);
    expect(await countOf('agent-000001')).to.not.equal(7);
    expect(await countOf('agent-000002')).to.equal(8);
    const stages = (await knex('verifier_push_attestations').select('stage').orderBy('agent_id')) as { stage: string }[];
    expect(stages.map((row) => row.stage)).to.deep.equal(['awaiting_evidence', 'verification_complete']);
    // A replay (the evidence is taken now), and a row changed since the judgement, are refused too.
    expect(await writer.write(verdict('agent-000002', 9), COMPLETE, await take('agent-000002', 'c'))).to.deep.equal({ stored: false, reason: 'evidence_not_taken' });
    const stale = await take('agent-000001', 'c');
    await knex('verifier_agents').where({ agent_id: 'agent-000001' }).update({ tpm_policy: '{"mask": "0x1"}' });
    expect(await writer.write(verdict('agent-000001', 9), COMPLETE, stale)).to.deep.equal({ stored: false, reason: 'evidence_not_taken' });
    expect(await knex('verifier_attestation_history').where({ agent_id: 'agent-000001' }).count({ n: '*' })).to.deep.equal([{ n: '0' }]);
    expect(await knex('audit_records').count({ n: '*' })).to.deep.equal([{ n: '1' }]);
    await writer.close();
  });

  describe('a push verdict and another process\'s silence FAIL decided from the same row version', function () {
    beforeEach(async function () {
      await opened.database.knex('verifier_push_attestations').update({ stage: 'awaiting_evidence' });
    });

    function judged(agentId: string, version: string): { write: RoundWrite; take: Parameters<PushVerdictWriter['write']>[2] } {
      return { write: { ...verdict(agentId, 7), expectedVersion: version }, take: { agentId, index: 0, challenge: 'c', receivedAt: new Date(), agentVersion: version } };
    }

    async function rowOf(agentId: string): Promise<{ state: number; outcomes: string[]; stage: string }> {
      const knex = opened.database.knex;
      const agent = (await knex('verifier_agents').where({ agent_id: agentId }).first()) as { operational_state: number };
      const history = (await knex('verifier_attestation_history').where({ agent_id: agentId }).orderBy('id')) as { outcome: string }[];
      const attestation = (await knex('verifier_push_attestations').where({ agent_id: agentId }).first()) as { stage: string };
      return { state: agent.operational_state, outcomes: history.map((h) => h.outcome), stage: attestation.stage };
    }

    it('the verdict\'s take runs before the FAIL commits and its statement after: not stored over the FAIL (agent_changed), the evidence left taken for the caller to judge again', async function () {
      const knex = opened.database.knex;
      const writer = writerOf(knex, 20);
      const read = await versionOf('agent-000001');
      const { write, take } = judged('agent-000001', read);
      let writing: ReturnType<PushVerdictWriter['write']> | undefined;
      await knex.transaction(async (trx) => {
        expect(await storeRounds(trx, [silenceFail('agent-000001', read)])).to.have.keys('agent-000001');
        // Uncommitted: the verdict's take sees the row it was judged from; its statement waits for the FAIL's row lock.
        writing = writer.write(write, COMPLETE, take);
        await waitForLockWaiters(knex, await backendPid(trx), 1);
      });
      expect(await writing).to.deep.equal({ stored: false, reason: 'agent_changed' });
      expect(await rowOf('agent-000001')).to.deep.equal({ state: OperationalState.FAILED, outcomes: ['fail'], stage: 'evaluating_evidence' });
      expect(await knex('audit_records').count({ n: '*' })).to.deep.equal([{ n: '0' }]);
      await writer.close();
    });

    it('the FAIL commits before the verdict\'s take: the evidence is not taken; the verdict commits first: the FAIL is not stored', async function () {
      const knex = opened.database.knex;
      const writer = writerOf(knex, 20);
      const first = await versionOf('agent-000001');
      expect(await storeRounds(knex, [silenceFail('agent-000001', first)])).to.have.keys('agent-000001');
      const late = judged('agent-000001', first);
      expect(await writer.write(late.write, COMPLETE, late.take)).to.deep.equal({ stored: false, reason: 'evidence_not_taken' });
      expect(await rowOf('agent-000001')).to.deep.equal({ state: OperationalState.FAILED, outcomes: ['fail'], stage: 'awaiting_evidence' });
      const second = await versionOf('agent-000002');
      const early = judged('agent-000002', second);
      expect((await writer.write(early.write, COMPLETE, early.take)).stored).to.equal(true);
      expect(await storeRounds(knex, [silenceFail('agent-000002', second)])).to.be.empty;
      expect(await rowOf('agent-000002')).to.deep.equal({ state: OperationalState.GET_QUOTE, outcomes: ['pass'], stage: 'verification_complete' });
      await writer.close();
    });
  });

  it('a batch that fails (the database refuses it) is retried until stored: nothing is stored meanwhile, the take included, and the verifier is not ready', async function () {
    const knex = opened.database.knex;
    await knex('verifier_push_attestations').update({ stage: 'awaiting_evidence' });
    const health = new VerifierHealth();
    const writer = writerOf(knex, 20, health);
    // The audit records' table gone: every verdict transaction fails at its audit step, after the take and the verdict statement.
    await knex.raw('alter table audit_records rename to audit_records_away');
    let settled = false;
    const writing = writer
      .write(verdict('agent-000001', 7), COMPLETE, { agentId: 'agent-000001', index: 0, challenge: 'c', receivedAt: new Date(), agentVersion: await versionOf('agent-000001') })
      .finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(settled, 'the write waits for the database').to.equal(false);
    expect(health.unstoredRounds).to.equal(1);
    expect(health.problem()).to.match(/^1 round\(s\) not stored: /);
    expect(await countOf('agent-000001')).to.not.equal(7);
    expect(((await knex('verifier_push_attestations').where({ agent_id: 'agent-000001' }).first()) as { stage: string }).stage).to.equal('awaiting_evidence');
    await knex.raw('alter table audit_records_away rename to audit_records');
    expect((await writing).stored).to.equal(true);
    expect(health.problem(), 'ready again once stored').to.equal(undefined);
    expect(await countOf('agent-000001')).to.equal(7);
    expect(((await knex('verifier_push_attestations').where({ agent_id: 'agent-000001' }).first()) as { stage: string }).stage).to.equal('verification_complete');
    await writer.close();
  });
});
