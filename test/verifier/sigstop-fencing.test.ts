import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { migrateLatest } from '../../lib/db/migrate.js';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';

const AGENTS = 12;
const INTERVAL = 1;
const LEASE = 4;
/** Each quote answered this late: a paused process is likely to hold a round in flight. */
const ANSWER_DELAY_MS = 300;

interface HistoryRow {
  id: number;
  agent_id: string;
  owner: string;
  outcome: string;
  attestation_count: number;
}

/**
 * Two `ironlime verifier` processes on one PostgreSQL. A is paused (SIGSTOP) with rounds in flight for
 * longer than its leases: B takes its agents over. When A resumes (SIGCONT), whatever it decided before
 * the pause is stale: none of it may be stored over B's newer verdicts (the writes are fenced by the
 * owner and the row version), no agent may be attested by both, and every agent's `pass` rows still
 * equal its `attestation_count`. A then gets its fair share back.
 */
describe('verifier: a paused process (SIGSTOP) resumed after its agents were taken over', function () {
  this.timeout(120_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let database: Database;
  let knex: Knex;
  let server: Server;
  const processes = new Map<string, ChildProcess>();
  const fake = new FakeAgent();

  function startProcess(instance: string): ChildProcess {
    const child = spawn(
      process.execPath,
      [
        path.join(REPO_ROOT, 'bin', 'ironlime.js'),
        'verifier',
        '--data-dir', path.join(dir, instance),
        '--port', '0',
        '--database', schema.url,
        '--instance-id', instance,
        '--quote-interval', String(INTERVAL),
        '--lease-seconds', String(LEASE),
        '--log-level', process.env['SIGSTOP_TEST_LOG'] ?? 'error',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    processes.set(instance, child);
    return child;
  }

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-sigstop-'));
    schema = await createTestSchema();
    database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: dir, searchPath: schema.name });
    knex = database.knex;
    await migrateLatest(knex);
    const tls = createSelfSignedServerCertificate({ commonName: 'agent', sans: ['127.0.0.1'] });
    server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      const query = new URL(req.url ?? '/', 'https://agent').searchParams;
      const results = fake.reply({ nonce: query.get('nonce') ?? '', mask: 0x400, imaEntry: Number(query.get('ima_ml_entry') ?? 0), partial: query.get('partial') === '1' });
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 200, status: 'Success', results }));
      }, ANSWER_DELAY_MS);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const repository = new VerifierAgentRepository(knex);
    for (let i = 0; i < AGENTS; i += 1) {
      await repository.insert(
        pullAgentEnrolment({ agentId: `paused-${String(i).padStart(2, '0')}`, port, tpmPolicy: '{"mask": "0x400"}', akTpm: fake.akTpm, mtlsCert: tls.certPem, supportedVersion: '2.2' }),
        initialAgentState(OperationalState.START),
        null,
        LEASE,
      );
    }
  });

  after(async function () {
    for (const child of processes.values()) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
    server?.close();
    await database?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const held = async (): Promise<[number, number]> => {
    const rows = (await knex('verifier_agents').select('owner')) as { owner: string | null }[];
    return [rows.filter((r) => r.owner === 'verifier-a').length, rows.filter((r) => r.owner === 'verifier-b').length];
  };

  it('stores no verdict twice nor over a newer one, and shares the agents again', async function () {
    const a = startProcess('verifier-a');
    await eventually('A attests every agent', async () => {
      const rows = (await knex('verifier_agents').select('owner', 'attestation_count')) as { owner: string | null; attestation_count: number }[];
      return rows.every((r) => r.owner === 'verifier-a' && r.attestation_count >= 1);
    }, 60_000, 200);
    startProcess('verifier-b');
    await eventually('A and B hold half each', async () => (await held()).every((n) => n === AGENTS / 2), 30_000, 200);
    const pausedAgents = ((await knex('verifier_agents').where({ owner: 'verifier-a' }).select('agent_id')) as { agent_id: string }[]).map((r) => r.agent_id);

    a.kill('SIGSTOP');
    const { lastBefore } = (await knex('verifier_attestation_history').max('id as lastBefore').first()) as { lastBefore: number };
    await eventually('B holds every agent', async () => (await held())[1] === AGENTS, 30_000, 200);
    await eventually('B attested each taken agent twice', async () => {
      const rows = (await knex('verifier_attestation_history')
        .where('id', '>', lastBefore)
        .where({ owner: 'verifier-b', outcome: 'pass' })
        .whereIn('agent_id', pausedAgents)
        .groupBy('agent_id')
        .havingRaw('count(*) >= 2')
        .select('agent_id')) as unknown[];
      return rows.length === pausedAgents.length;
    }, 30_000, 200);
    a.kill('SIGCONT');
    await eventually('A and B hold half each again', async () => (await held()).every((n) => n === AGENTS / 2), 30_000, 200);
    // A few more rounds of both, then stop both so that nothing moves while the rows are compared.
    await new Promise((resolve) => setTimeout(resolve, 3 * INTERVAL * 1000));
    for (const child of processes.values()) child.kill('SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, 500));

    const history = (await knex('verifier_attestation_history').orderBy('id').select('id', 'agent_id', 'owner', 'outcome', 'attestation_count')) as HistoryRow[];
    // Each pass row carries the count after it: a count seen twice is a verdict stored twice (by both processes).
    for (let i = 0; i < AGENTS; i += 1) {
      const agentId = `paused-${String(i).padStart(2, '0')}`;
      const counts = history.filter((row) => row.agent_id === agentId && row.outcome === 'pass').map((row) => row.attestation_count);
      expect(counts, agentId).to.deep.equal(counts.map((_, index) => index + 1));
    }
    const rows = (
      await knex.raw(`select a.agent_id, a.attestation_count,
        (select count(*)::int from verifier_attestation_history h where h.agent_id = a.agent_id and h.outcome = 'pass') as passes
        from verifier_agents a`)
    ).rows as { agent_id: string; attestation_count: number; passes: number }[];
    expect(rows).to.have.length(AGENTS);
    for (const row of rows) expect(row.passes, row.agent_id).to.equal(row.attestation_count);
  });
});
