import { expect } from 'chai';
import type { Knex } from 'knex';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import type { NodeRow } from '../../lib/dashboard/node-row.js';
import { ROUNDS_DETAILED, readNodeTimeline } from '../../lib/dashboard/node-timeline.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { capturedQueries, type CapturedQuery } from '../helpers/rows-read.js';

const ROUNDS = 300;
/** Failures per round, each a short context: a round's failures take about 60 KB, stored out of line (TOAST). */
const FAILURES = 1000;
const NODE = { agentId: 'agent-000001', tenant: 'default', runtimePolicy: null, mbPolicy: null, liveness: null } as unknown as NodeRow;

/** Blocks (8 KiB) PostgreSQL touched to run `query` (`explain (analyze, buffers)`), the values it took out of line included. */
async function blocksTouched(knex: Knex, query: CapturedQuery): Promise<number> {
  const result = (await knex.raw(`explain (analyze, buffers, format json) ${query.sql.replace(/\$\d+/g, '?')}`, [...query.bindings])) as {
    rows: { 'QUERY PLAN': { Plan: { 'Shared Hit Blocks': number; 'Shared Read Blocks': number } }[] }[];
  };
  const plan = result.rows[0]?.['QUERY PLAN'][0]?.Plan;
  return (plan?.['Shared Hit Blocks'] ?? 0) + (plan?.['Shared Read Blocks'] ?? 0);
}

/**
 * A round's history row keeps every failure (one per IMA line the node sent): the node page counted
 * the failures of each of its last 500 rounds and gathered their event ids, reading every one of them
 * at every view, though it shows the contexts and event ids of the newest rounds only. A node failing
 * round after round with large lists made its own page, the one the operator opens, the slowest.
 */
describe("dashboard: a node page reads the failures of the rounds it details, not of its last 500", function () {
  this.timeout(120_000);
  let opened: OpenedDatabase;

  before(async () => {
    opened = await openMigratedTestSchema();
    const knex = opened.database.knex;
    await seedVerifierAgents(knex, 1, 0);
    await knex.raw(
      `insert into verifier_attestation_history (agent_id, tenant, verifier_id, owner, attestation_count, attempted_at, outcome, operational_state, failures)
       select 'agent-000001', 'default', 'default', 'test', g, now() - (?::int - g) * interval '1 second', 'fail', 9,
              (select jsonb_agg(jsonb_build_object('event_id', 'e' || (i % 3), 'context', md5(g || '/' || i))) from generate_series(1, ?::int) i)
       from generate_series(1, ?::int) g`,
      [ROUNDS, FAILURES, ROUNDS],
    );
    await knex.raw('analyze verifier_attestation_history');
  });

  after(async () => {
    await opened.dispose();
  });

  it(`details the ${ROUNDS_DETAILED} newest rounds, touching about their failures only`, async () => {
    const knex = opened.database.knex;
    let timeline: Awaited<ReturnType<typeof readNodeTimeline>> = [];
    const [query] = await capturedQueries(knex, 'verifier_attestation_history', async () => {
      timeline = await readNodeTimeline(knex, NODE, undefined);
    });
    expect(timeline).to.have.length(ROUNDS);
    const detailed = timeline.filter((entry) => !entry.leftOut);
    expect(detailed).to.have.length(ROUNDS_DETAILED);
    expect(detailed.every((entry) => entry.detail.includes(`… and ${FAILURES - 20} more failures`))).to.equal(true);
    expect(detailed[0]?.eventIds).to.deep.equal(['e1', 'e2', 'e0']);
    expect(timeline.slice(ROUNDS_DETAILED).every((entry) => entry.leftOut && entry.eventIds.length === 0)).to.equal(true);

    const stored = (await knex.raw(`select sum(pg_column_size(failures))::float8 / 8192 as blocks from verifier_attestation_history`)) as { rows: { blocks: number }[] };
    const perRound = Number(stored.rows[0]?.blocks) / ROUNDS;
    expect(perRound, 'blocks a round takes').to.be.above(2);
    // Each detailed round's failures are read a few times (counted, cut, their event ids found): about
    // 620 blocks here. Before: the failures of every round (8,000 blocks, and 65 rounds detailed).
    expect(await blocksTouched(knex, query as CapturedQuery)).to.be.below(8 * ROUNDS_DETAILED * perRound + 200);
  });
});
