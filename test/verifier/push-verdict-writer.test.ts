import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import type { HistoryRow } from '../../lib/attestation/history-row.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { migrateLatest } from '../../lib/db/migrate.js';
import { PushVerdictWriter } from '../../lib/verifier/push/push-verdict-writer.js';
import type { RoundWrite } from '../../lib/verifier/round-writer.js';
import { auditVerdicts } from '../../lib/verifier/verdict-audit.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const PASS: HistoryRow = { outcome: 'pass', nonce: null, imaMlEntry: 0, imaEntriesReceived: 1, failures: [] };

function verdict(agentId: string, count: number): RoundWrite {
  return { agentId, verifierId: 'default', owner: 'bench', leaseSeconds: 30, state: { ...initialAgentState(OperationalState.GET_QUOTE), attestationCount: count }, history: PASS };
}

describe('push verdict writer: close stores what waits for its batch', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;

  beforeEach(async function () {
    opened = await openTestSchema();
    await migrateLatest(opened.database.knex);
    await seedVerifierAgents(opened.database.knex, 2, 0);
    await opened.database.knex('verifier_push_attestations').insert(
      ['agent-000001', 'agent-000002'].map((agentId) => ({
        agent_id: agentId,
        index: 0,
        stage: 'evaluating_evidence',
        challenge: 'c',
        choice: '{}',
        system_info: '{}',
        capabilities_received_at: new Date(),
        challenges_expire_at: new Date(),
      })),
    );
  });

  afterEach(async function () {
    await opened?.dispose();
  });

  it('close() sends the waiting verdicts at once (not after the batch delay), resolves once each is stored, and refuses later ones', async function () {
    const knex = opened.database.knex;
    // A batch delay far beyond the test's timeout: only close() can send these.
    const writer = new PushVerdictWriter(knex, auditVerdicts({ privateKey, publicKey }, 'instance-1'), 600_000);
    const writes = [
      writer.write(verdict('agent-000001', 7), { index: 0, evaluation: 'pass', failureReason: null }),
      writer.write(verdict('agent-000002', 8), { index: 0, evaluation: 'pass', failureReason: null }),
    ];
    await writer.close();
    expect(await Promise.all(writes)).to.deep.equal([true, true]);
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
});
