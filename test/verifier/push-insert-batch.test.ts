import { expect } from 'chai';
import { pino } from 'pino';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { PushInsertBatch, pushInsertDelayMs } from '../../lib/verifier/push/push-insert-batch.js';
import { PushRepository, type InsertAfter, type NewPushAttestation } from '../../lib/verifier/push/push-repository.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';

const AGENTS = ['agent-000001', 'agent-000002', 'agent-000003'];
const silent = pino({ level: 'silent' });

function attestation(agentId: string, index: number, challenge: string): NewPushAttestation {
  return {
    agentId,
    index,
    stage: 'awaiting_evidence',
    challenge,
    choice: { hashAlg: 'sha256', signatureScheme: 'ecdsa', pcrs: [], selectedSubjects: {}, certificationKey: {}, uefiLog: false, imaStartingOffset: null, imaEntryCount: null, imaMode: 'skip', bootTime: null },
    systemInfo: {},
    capabilitiesReceivedAt: new Date(),
    challengesExpireAt: new Date(Date.now() + 60_000),
  };
}

/** The repository, counting its `insertAfter` statements. */
class CountingRepository extends PushRepository {
  statements = 0;
  failNext = false;

  override async insertAfter(inserts: readonly InsertAfter[]): Promise<Set<string>> {
    this.statements += 1;
    if (this.failNext) {
      this.failNext = false;
      throw new Error('the database refused the statement');
    }
    return super.insertAfter(inserts);
  }
}

describe('push insert batch: phase 1 inserts after a stored verdict share a statement', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let repository: CountingRepository;

  beforeEach(async function () {
    opened = await openMigratedTestSchema();
    await seedVerifierAgents(opened.database.knex, AGENTS.length, 0);
    repository = new CountingRepository(opened.database.knex);
    for (const agentId of AGENTS) await repository.insertAttestation(attestation(agentId, 0, `${agentId}-0`));
    await opened.database.knex('verifier_push_attestations').update({ stage: 'verification_complete', evaluation: 'pass' });
  });

  afterEach(async function () {
    await opened?.dispose();
  });

  async function next(agentId: string, agentVersion?: string): Promise<InsertAfter> {
    return {
      attestation: attestation(agentId, 1, `${agentId}-1`),
      after: { index: 0, challenge: `${agentId}-0` },
      agentVersion: agentVersion ?? (await agentRowVersion(opened.database.knex, agentId)),
    };
  }

  it('inserts sent within the delay are one statement, each answered by its own conditions', async function () {
    const batch = new PushInsertBatch(repository, 30, silent);
    const answers = await Promise.all([batch.insert(await next(AGENTS[0] as string)), batch.insert(await next(AGENTS[1] as string, 'stale version')), batch.insert(await next(AGENTS[2] as string))]);
    expect(answers).to.deep.equal([true, false, true]);
    expect(repository.statements).to.equal(1);
    const stored = (await opened.database.knex('verifier_push_attestations').where({ index: 1 }).orderBy('agent_id').pluck('challenge')) as string[];
    expect(stored).to.deep.equal([`${AGENTS[0]}-1`, `${AGENTS[2]}-1`]);
  });

  it('a statement that fails answers false to every insert of its batch (each caller reads and inserts alone), and the next batch goes on', async function () {
    const warnings: Record<string, unknown>[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line) as Record<string, unknown>) });
    const batch = new PushInsertBatch(repository, 10, log);
    repository.failNext = true;
    const failed = await Promise.all([batch.insert(await next(AGENTS[0] as string)), batch.insert(await next(AGENTS[1] as string))]);
    expect(failed).to.deep.equal([false, false]);
    expect(warnings.map((line) => [line['msg'], line['inserts']]), 'the failed statement is logged once').to.deep.equal([['phase 1 batched insert failed: each attestation is read and inserted alone', 2]]);
    expect(await batch.insert(await next(AGENTS[0] as string))).to.equal(true);
    expect(repository.statements).to.equal(2);
  });

  it("one agent's NUL and lone surrogate in its own strings are stored escaped and fail nobody's insert", async function () {
    const batch = new PushInsertBatch(repository, 30, silent);
    const hostile = await next(AGENTS[1] as string);
    const attestation = { ...hostile.attestation, systemInfo: { boot_time: 'x\u0000y', other: 'z\ud800' } };
    const answers = await Promise.all([batch.insert(await next(AGENTS[0] as string)), batch.insert({ ...hostile, attestation }), batch.insert(await next(AGENTS[2] as string))]);
    expect(answers).to.deep.equal([true, true, true]);
    expect(repository.statements).to.equal(1);
    const stored = (await opened.database.knex('verifier_push_attestations').where({ agent_id: AGENTS[1], index: 1 }).first('system_info')) as { system_info: unknown };
    const info = (typeof stored.system_info === 'string' ? JSON.parse(stored.system_info) : stored.system_info) as Record<string, string>;
    expect(info).to.deep.equal({ boot_time: 'x\\u0000y', other: 'z\\ud800' });
  });

  it('an insert after close is answered false without a statement', async function () {
    const batch = new PushInsertBatch(repository, 10, silent);
    await batch.close();
    expect(await batch.insert(await next(AGENTS[0] as string))).to.equal(false);
    expect(repository.statements).to.equal(0);
  });

  it('close sends what waits at once and resolves only after the statement answered', async function () {
    const batch = new PushInsertBatch(repository, 60_000, silent);
    const waiting = batch.insert(await next(AGENTS[0] as string));
    let answered = false;
    void waiting.then(() => (answered = true));
    await batch.close();
    expect(answered, 'the insert was answered before close resolved').to.equal(true);
    expect(await waiting).to.equal(true);
    expect(repository.statements).to.equal(1);
  });

  it('waits a fortieth of quote_interval, at most 50 ms', function () {
    expect([0.2, 1, 2, 60].map(pushInsertDelayMs)).to.deep.equal([5, 25, 50, 50]);
  });
});
