import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { pino } from 'pino';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import type { HistoryRow } from '../../lib/attestation/history-row.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { appendAuditEvents } from '../../lib/audit/audit-batch.js';
import { verifyAuditChain } from '../../lib/audit/audit-chain.js';
import { statementsOn } from '../../lib/db/fixed-statement.js';
import type { JudgedEvidenceTake } from '../../lib/verifier/push/push-repository.js';
import { PushVerdictWriter, type PushCompletion } from '../../lib/verifier/push/push-verdict-writer.js';
import type { RoundWrite } from '../../lib/verifier/round-writer.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { exportCollected } from '../audit/helpers/sealed-export.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { insertOpenAttestations } from './helpers/push-verdict-writer-on.js';
import { answeredStatements } from '../helpers/rows-read.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const key = { privateKey, publicKey };
const PASS: HistoryRow = { outcome: 'pass', nonce: null, imaMlEntry: 0, imaEntriesReceived: 1, failures: [] };
const FAIL: HistoryRow = {
  outcome: 'fail',
  nonce: null,
  imaMlEntry: 0,
  imaEntriesReceived: 1,
  failures: [{ event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'emergency', context: { message: 'File not found in allowlist: /usr/bin/nc' }, recoverable: false }],
};
const AGENTS = ['agent-000001', 'agent-000002'];

/**
 * The push verdicts' transaction as two statements between BEGIN and COMMIT (the take, the rounds and
 * the audit heads' lock in one; the records, the completions and the failures' boot logs in the
 * other), through knex's transaction and through the prepared path PostgreSQL runs: what the seven
 * round trips stored, and nothing when any part of it fails.
 */
describe('push verdict writer: the verdicts\' transaction in four round trips', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;

  beforeEach(async function () {
    opened = await openMigratedTestSchema();
    const knex = opened.database.knex;
    await seedVerifierAgents(knex, AGENTS.length, 0);
    await insertOpenAttestations(knex, AGENTS, 'awaiting_evidence');
  });

  afterEach(async function () {
    await opened?.dispose();
  });

  function verdict(agentId: string, history: HistoryRow, operationalState: OperationalState, count: number): RoundWrite {
    return { agentId, verifierId: 'default', owner: 'bench', leaseSeconds: 30, state: { ...initialAgentState(operationalState), attestationCount: count }, history };
  }

  async function takeOf(agentId: string): Promise<JudgedEvidenceTake> {
    return { agentId, index: 0, challenge: 'c', receivedAt: new Date(), agentVersion: await agentRowVersion(opened.database.knex, agentId) };
  }

  /** The statements the database answered while `work` ran, each as its first words (begin, commit) or the table it starts with. */
  function statementsDuring(work: () => Promise<unknown>): Promise<string[]> {
    return answeredStatements(opened.database.knex, (sql) => sql.split('\n')[0]?.slice(0, 40) ?? '', work);
  }

  for (const [prepared, how] of [[false, 'knex'], [true, 'prepared']] as const) {
    it(`a batch of a PASS and a FAIL, each taking its evidence and completing its attestation: begin, two statements, commit; stored as the seven statements stored it (${how})`, async function () {
      const knex = opened.database.knex;
      // The first agent's stream already has a record (another writer's): the verdict's is chained after it.
      const [earlier] = await appendAuditEvents(statementsOn(knex, false), [{ stream: 'agent-000001', at: new Date().toISOString(), actor: 'admin', action: 'update', agentId: 'agent-000001', details: {} }], key);
      await knex('verifier_push_boot_logs').insert({ agent_id: 'agent-000002', enrolment: (await knex('verifier_agents').where({ agent_id: 'agent-000002' }).first('enrolment')).enrolment, attestation_index: 0, boot_time: 1, hash_alg: 'sha256', mask: '0x1', context_sha256: 'x', event_log: 'log' });
      const recorded: string[][] = [];
      const writer = new PushVerdictWriter(
        knex,
        new VerifierAgentRepository(knex),
        { key, actor: 'instance-1', alsoStore: async (_statements, stored) => void recorded.push(stored.map((write) => write.agentId)) },
        50,
        pino({ level: 'silent' }),
        new VerifierHealth(),
        prepared,
      );
      const pass: PushCompletion = { index: 0, evaluation: 'pass', failureReason: null };
      const fail: PushCompletion = { index: 0, evaluation: 'fail', failureReason: 'policy' };
      const [takePass, takeFail] = [await takeOf('agent-000001'), await takeOf('agent-000002')];
      let outcomes: Awaited<ReturnType<PushVerdictWriter['write']>>[] = [];
      const statements = await statementsDuring(async () => {
        outcomes = await Promise.all([
          writer.write(verdict('agent-000001', PASS, OperationalState.GET_QUOTE, 5), pass, takePass),
          writer.write(verdict('agent-000002', FAIL, OperationalState.FAILED, 3), fail, takeFail),
        ]);
      });
      // Before: begin, the take, the rounds, the heads' lock, the records, the boot logs' tombstone, the completion, commit.
      // Knex does not tell its listeners about its own BEGIN and COMMIT; the prepared path does.
      const between = prepared ? statements.slice(1, -1) : statements;
      if (prepared) expect([statements[0], statements.at(-1)]).to.deep.equal(['begin', 'commit']);
      expect(between.map((sql) => sql.split(' ').slice(0, 3).join(' '))).to.deep.equal(['with given as', 'with input as']);
      expect(recorded).to.deep.equal([AGENTS]);

      // Each verdict stored, with its agent's row version after it.
      expect(outcomes).to.deep.equal([
        { stored: true, agentVersion: await agentRowVersion(knex, 'agent-000001') },
        { stored: true, agentVersion: await agentRowVersion(knex, 'agent-000002') },
      ]);
      const agents = (await knex('verifier_agents').whereIn('agent_id', AGENTS).orderBy('agent_id').select('operational_state', 'attestation_count')) as { operational_state: number; attestation_count: number }[];
      expect(agents).to.deep.equal([
        { operational_state: OperationalState.GET_QUOTE, attestation_count: 5 },
        { operational_state: OperationalState.FAILED, attestation_count: 3 },
      ]);
      const history = (await knex('verifier_attestation_history').orderBy('agent_id').select('agent_id', 'outcome', 'attestation_count')) as unknown[];
      expect(history).to.deep.equal([
        { agent_id: 'agent-000001', outcome: 'pass', attestation_count: 5 },
        { agent_id: 'agent-000002', outcome: 'fail', attestation_count: 3 },
      ]);
      const attestations = (await knex('verifier_push_attestations').orderBy('agent_id').select('stage', 'evaluation', 'failure_reason')) as unknown[];
      expect(attestations).to.deep.equal([
        { stage: 'verification_complete', evaluation: 'pass', failure_reason: null },
        { stage: 'verification_complete', evaluation: 'fail', failure_reason: 'policy' },
      ]);
      // The failure's agent's stored boot log is tombstoned; the passing one has none to touch.
      expect(await knex('verifier_push_boot_logs').orderBy('agent_id').select('agent_id', 'event_log', 'boot_time')).to.deep.equal([{ agent_id: 'agent-000002', event_log: null, boot_time: null }]);

      // One signed verdict record per verdict, chained after its stream's head as it was.
      const { records: first } = await exportCollected(knex, key, { stream: 'agent-000001' });
      expect(first.map((r) => [r.seq, r.action, r.actor])).to.deep.equal([
        [1, 'update', 'admin'],
        [2, 'verdict', 'verifier:instance-1'],
      ]);
      expect(first[1]?.prevHash).to.equal(earlier?.hash);
      expect(first[1]?.details).to.deep.include({ outcome: 'pass', attestation_count: 5 });
      expect(verifyAuditChain(first, publicKey).valid).to.equal(true);
      const { records: second } = await exportCollected(knex, key, { stream: 'agent-000002' });
      expect(second.map((r) => [r.seq, r.action])).to.deep.equal([[1, 'verdict']]);
      expect(second[0]?.details).to.deep.include({ outcome: 'fail', event_ids: ['ima.validation.ima-ng.not_in_allowlist'] });
      expect(verifyAuditChain(second, publicKey).valid).to.equal(true);
      expect(await knex('audit_heads').orderBy('stream').select('stream', 'seq')).to.deep.equal([
        { stream: 'agent-000001', seq: '2' },
        { stream: 'agent-000002', seq: '1' },
      ]);
      await writer.close();
    });

    it(`fails closed at either statement: nothing of the batch is stored (the take, the round, the heads), and the retry stores it once (${how})`, async function () {
      const knex = opened.database.knex;
      const health = new VerifierHealth();
      const writer = new PushVerdictWriter(knex, new VerifierAgentRepository(knex), { key, actor: 'instance-1' }, 20, pino({ level: 'silent' }), health, prepared);
      for (const [away, back] of [
        ['alter table audit_heads rename to audit_heads_away', 'alter table audit_heads_away rename to audit_heads'],
        ['alter table verifier_push_boot_logs rename to boot_logs_away', 'alter table boot_logs_away rename to verifier_push_boot_logs'],
      ] as const) {
        const agentId = away.includes('audit_heads') ? 'agent-000001' : 'agent-000002';
        const count = await knex('verifier_agents').where({ agent_id: agentId }).first('attestation_count');
        await knex.raw(away);
        let settled = false;
        const writing = writer
          .write(verdict(agentId, FAIL, OperationalState.FAILED, 40), { index: 0, evaluation: 'fail', failureReason: 'policy' }, await takeOf(agentId))
          .finally(() => (settled = true));
        await new Promise((resolve) => setTimeout(resolve, 800));
        expect(settled, `${away}: the write waits for the database`).to.equal(false);
        expect(health.unstoredRounds).to.equal(1);
        expect(await knex('verifier_agents').where({ agent_id: agentId }).first('attestation_count')).to.deep.equal(count);
        expect(await knex('verifier_push_attestations').where({ agent_id: agentId }).first('stage')).to.deep.equal({ stage: 'awaiting_evidence' });
        expect(await knex('verifier_attestation_history').where({ agent_id: agentId }).count({ n: '*' })).to.deep.equal([{ n: '0' }]);
        await knex.raw(back);
        expect((await writing).stored, away).to.equal(true);
        expect(await knex('verifier_attestation_history').where({ agent_id: agentId }).count({ n: '*' })).to.deep.equal([{ n: '1' }]);
        expect(await knex('audit_records').where({ stream: agentId }).count({ n: '*' })).to.deep.equal([{ n: '1' }]);
        expect(await knex('verifier_push_attestations').where({ agent_id: agentId }).first('stage', 'evaluation')).to.deep.equal({ stage: 'verification_complete', evaluation: 'fail' });
      }
      expect(health.problem()).to.equal(undefined);
      await writer.close();
    });
  }
});
