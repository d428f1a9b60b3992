import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import type { HistoryRow } from '../../lib/attestation/history-row.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { verifyAuditChain } from '../../lib/audit/audit-chain.js';
import { verifyAuditExport } from '../../lib/audit/verify-audit-export.js';
import { RoundWriter, type RoundWrite } from '../../lib/verifier/round-writer.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { exportCollected, exportText } from '../audit/helpers/sealed-export.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const key = { privateKey, publicKey };

function round(agentId: string, count: number, history: HistoryRow | undefined): RoundWrite {
  return { agentId, verifierId: 'default', owner: 'bench', leaseSeconds: 30, state: { ...initialAgentState(OperationalState.GET_QUOTE), attestationCount: count }, history };
}

const PASS: HistoryRow = { outcome: 'pass', nonce: 'n1', imaMlEntry: 0, imaEntriesReceived: 1, failures: [] };

describe("verdicts in the audit log, in the round writer's transaction", function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;

  beforeEach(async function () {
    opened = await openMigratedTestSchema();
    await seedVerifierAgents(opened.database.knex, 3, 0);
  });

  afterEach(async function () {
    await opened?.dispose();
  });

  // Through knex's transaction, and through the verifier's own node-postgres transaction with prepared statements.
  for (const [prepared, how] of [[false, 'knex'], [true, 'prepared']] as const) {
    it(`appends one signed verdict per decided round of a batch, none for a retry, each agent its own chain (${how})`, async function () {
      const knex = opened.database.knex;
      const writer = new RoundWriter(knex, { audit: { key, actor: 'instance-1' }, prepared });
      const fail: HistoryRow = {
        outcome: 'fail',
        nonce: 'n2',
        imaMlEntry: 0,
        imaEntriesReceived: 1,
        failures: [{ event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'emergency', context: { message: 'File not found in allowlist: /tmp/x', nan: Number.NaN }, recoverable: false }],
      };
      const retry: HistoryRow = { outcome: 'retry', nonce: null, imaMlEntry: null, imaEntriesReceived: null, failures: [] };
      const stored = await Promise.all([writer.write(round('agent-000001', 1, PASS)), writer.write(round('agent-000002', 1, fail)), writer.write(round('agent-000003', 0, retry))]);
      expect(stored).to.deep.equal([true, true, true]);
      await writer.write(round('agent-000001', 2, PASS));
      const { records: first } = await exportCollected(knex, key, { stream: 'agent-000001' });
      expect(first.map((r) => [r.seq, r.action, r.actor, r.details['attestation_count']])).to.deep.equal([
        [1, 'verdict', 'verifier:instance-1', 1],
        [2, 'verdict', 'verifier:instance-1', 2],
      ]);
      expect(verifyAuditChain(first, publicKey).valid).to.equal(true);
      const { records: second } = await exportCollected(knex, key, { stream: 'agent-000002' });
      expect(second[0]?.details).to.deep.include({ outcome: 'fail', event_ids: ['ima.validation.ima-ng.not_in_allowlist'] });
      expect((second[0]?.details['failures'] as { context: Record<string, unknown> }[])[0]?.context).to.deep.equal({ message: 'File not found in allowlist: /tmp/x', nan: null });
      expect(verifyAuditChain(second, publicKey).valid).to.equal(true);
      expect((await exportCollected(knex, key, { stream: 'agent-000003' })).records).to.deep.equal([]);
      // The first batch's two verdicts share one signature, each with its path to the signed root.
      expect(second[0]?.signature).to.equal(first[0]?.signature);
      expect([first[0]?.batchPath.length, second[0]?.batchPath.length, first[1]?.batchPath.length]).to.deep.equal([1, 1, 0]);
      const exported = await exportCollected(knex, key, {});
      expect(verifyAuditExport(exportText(exported), publicKey)).to.include({ valid: true, records: 3 });
    });

    it(`fails closed: when the record cannot be stored, neither is the verdict (the writer rejects, the loop keeps the round; ${how})`, async function () {
      const knex = opened.database.knex;
      await knex.schema.renameTable('audit_records', 'audit_records_gone');
      const writer = new RoundWriter(knex, { audit: { key, actor: 'instance-1' }, prepared });
      let refused: unknown;
      await writer.write(round('agent-000001', 999, PASS)).catch((error: unknown) => {
        refused = error;
      });
      expect(refused).to.be.instanceOf(Error);
      const agent = (await knex('verifier_agents').where({ agent_id: 'agent-000001' }).first()) as { attestation_count: number };
      expect(agent.attestation_count).to.equal(1);
      expect(await knex('verifier_attestation_history').where({ agent_id: 'agent-000001' }).count({ n: '*' })).to.deep.equal([{ n: '0' }]);
      expect(await knex('audit_heads').count({ n: '*' })).to.deep.equal([{ n: '0' }]);
    });
  }
});
