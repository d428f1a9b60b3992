import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import knexFactory, { type Knex } from 'knex';
import { appendAuditEvents } from '../lib/audit/audit-batch.js';
import { statementsOn } from '../lib/db/fixed-statement.js';
import type { AuditEvent } from '../lib/audit/audit-record.js';
import { DashboardQueries, NODE_SORTS, NODES_PAGE_SIZE, type NodeSort } from '../lib/dashboard/dashboard-queries.js';
import { statusFreshnessBounds } from '../lib/verifier/freshness-bounds.js';
import { VerifierConfig } from '../lib/verifier/verifier-config.js';
import { createDatabase } from '../lib/db/database-factory.js';
import { migrateLatest } from '../lib/db/migrate.js';
import type { Benchmark } from './benchmark.js';

const DATABASE_URL = process.env['IRONLIME_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Fills `verifier_agents` with `agents` rows in one statement (ids `agent-000001`…; every 50th one
 * failed with an event id, two tenants alternating) and gives each `roundsPerAgent` history rows over
 * the last minutes. The shapes the dashboard reads, not real evidence.
 */
export async function seedVerifierAgents(knex: Knex, agents: number, roundsPerAgent: number): Promise<void> {
  await knex.raw(
    `insert into verifier_agents (agent_id, tenant, ip, port, tpm_policy, accept_tpm_hash_algs, accept_tpm_encryption_algs,
       accept_tpm_signing_algs, ak_tpm, supported_version, verifier_id, operational_state, attestation_count,
       last_event_id, last_successful_attestation, last_attempt_at, ima_pcr10, owner)
     select 'agent-' || lpad(i::text, 6, '0'), case when i % 2 = 0 then 'blue' else 'default' end, '10.0.' || (i / 250) || '.' || (i % 250), 9002,
       '{}', '["sha256"]', '["ecc"]', '["ecschnorr"]', 'ak', '2.2', 'default',
       case when i % 50 = 0 then 9 else 3 end, i % 1000,
       case when i % 50 = 0 then 'ima.validation.ima-ng.not_in_allowlist' else null end,
       now() - make_interval(secs => i % 600), now() - make_interval(secs => i % 7), '{}', 'bench'
     from generate_series(1, ?) as i`,
    [agents],
  );
  await knex.raw(
    `insert into verifier_attestation_history (agent_id, verifier_id, owner, attempted_at, outcome, operational_state, attestation_count)
     select 'agent-' || lpad(i::text, 6, '0'), 'default', 'bench', now() - make_interval(secs => r * 20),
       case when i % 50 = 0 and r = 0 then 'fail' else 'pass' end, 3, r
     from generate_series(1, ?) as i, generate_series(0, ? - 1) as r`,
    [agents, roundsPerAgent],
  );
  // The rounds' tenant, as the verifier writes it, where the schema has one (a migration test seeds an older schema).
  if (await knex.schema.hasColumn('verifier_attestation_history', 'tenant')) {
    await knex.raw('update verifier_attestation_history h set tenant = a.tenant from verifier_agents a where a.agent_id = h.agent_id');
  }
  await knex.raw('analyze verifier_agents');
  await knex.raw('analyze verifier_attestation_history');
}

export interface TimedQuery {
  readonly name: string;
  /** Median wall time of `repeats` runs, ms. */
  readonly medianMs: number;
}

/** The node table's pages (every sort, both directions, a search, a deep page) and the overview, timed. */
export async function timeDashboardQueries(queries: DashboardQueries, repeats: number): Promise<TimedQuery[]> {
  const runs: [string, () => Promise<unknown>][] = [['overview (all tenants)', () => queries.overview(undefined)], ['overview (one tenant)', () => queries.overview('blue')]];
  for (const sort of Object.keys(NODE_SORTS) as NodeSort[]) {
    runs.push([`nodes sort ${sort} desc, page 1`, () => queries.nodes(undefined, { search: '', sort, descending: true, page: 1 })]);
  }
  runs.push(['nodes sort id, page 150', () => queries.nodes(undefined, { search: '', sort: 'id', descending: false, page: 150 })]);
  runs.push(['nodes search "not_in", one tenant', () => queries.nodes('default', { search: 'not_in', sort: 'state', descending: false, page: 1 })]);
  const shown = Array.from({ length: NODES_PAGE_SIZE }, (_, n) => `agent-${String(n + 1).padStart(6, '0')}`);
  runs.push(['a page of rows shown (live updates)', () => queries.nodesByIds(undefined, shown)]);
  const timed: TimedQuery[] = [];
  for (const [name, run] of runs) {
    const times: number[] = [];
    for (let i = 0; i < repeats; i += 1) {
      const started = process.hrtime.bigint();
      await run();
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    times.sort((a, b) => a - b);
    timed.push({ name, medianMs: times[Math.floor(times.length / 2)] as number });
  }
  return timed;
}

/** Verdict records appended the way the round writer does (batches of `batch` in one transaction): CPU and wall ms per record. */
export async function timeVerdictAudit(knex: Knex, batches: number, batch: number): Promise<{ cpuMsPerRecord: number; wallMsPerRecord: number }> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const key = { privateKey, publicKey };
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  for (let b = 0; b < batches; b += 1) {
    const events: AuditEvent[] = Array.from({ length: batch }, (_, i) => ({
      stream: `agent-${String(i + 1).padStart(6, '0')}`,
      at: new Date().toISOString(),
      actor: 'verifier:bench',
      action: 'verdict',
      agentId: `agent-${String(i + 1).padStart(6, '0')}`,
      details: { outcome: 'pass', operational_state: 3, attestation_count: b, nonce: randomBytes(10).toString('hex'), event_ids: [], failures: [] },
    }));
    await knex.transaction((trx) => appendAuditEvents(statementsOn(trx, false), events, key));
  }
  const used = process.cpuUsage(cpu);
  const records = batches * batch;
  return { cpuMsPerRecord: (used.user + used.system) / 1000 / records, wallMsPerRecord: Number(process.hrtime.bigint() - started) / 1e6 / records };
}

export const dashboardBenchmark: Benchmark = {
  name: 'dashboard',
  description: "the dashboard's node table and overview at 10,000 agents, and the audit log's cost per verdict (PostgreSQL)",
  async run(args) {
    const agents = Number(args[0] ?? 10_000);
    await withSeededSchema('dashboard', agents, 10, async (knex) => {
      const queries = new DashboardQueries(knex, 11, statusFreshnessBounds(new VerifierConfig()), () => Date.now() / 1000);
      for (const { name, medianMs } of await timeDashboardQueries(queries, 7)) {
        process.stdout.write(`${name.padEnd(40)} ${medianMs.toFixed(1).padStart(8)} ms (median of 7, ${agents} agents, ${agents * 10} rounds)\n`);
      }
      const audit = await timeVerdictAudit(knex, 20, 250);
      process.stdout.write(`audit: verdict record in a batch of 250   ${audit.cpuMsPerRecord.toFixed(3)} ms CPU, ${audit.wallMsPerRecord.toFixed(3)} ms wall per record\n`);
    });
  },
};

/**
 * Runs `work` on a migrated schema of its own on the test PostgreSQL, seeded with `agents` verifier
 * agents and `rounds` history rows each (`seedVerifierAgents`), and drops the schema after.
 */
export async function withSeededSchema(label: string, agents: number, rounds: number, work: (knex: Knex) => Promise<void>): Promise<void> {
  const schema = `bench_${label}_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 1 } });
  await admin.raw('create schema ??', [schema]);
  const database = await createDatabase({ url: DATABASE_URL, dataDir: tmpdir(), searchPath: schema });
  try {
    await migrateLatest(database.knex);
    await seedVerifierAgents(database.knex, agents, rounds);
    await work(database.knex);
  } finally {
    await database.close();
    await admin.raw('drop schema if exists ?? cascade', [schema]);
    await admin.destroy();
  }
}
