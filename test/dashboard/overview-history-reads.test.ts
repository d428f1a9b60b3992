import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { DashboardQueries } from '../../lib/dashboard/dashboard-queries.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { capturedQueries, rowsRead } from '../helpers/rows-read.js';

const AGENTS = 100;
/** Rounds per agent in the last hour: 40,000 rounds, of which 4 failed (3 of tenant default's). */
const ROUNDS = 400;

/**
 * The overview counts the failures of the last hour, read at every live update's tick while a tab is
 * open: it read every round of the hour to find them (5.4 million at 3,000 agents and a 2 s interval,
 * hundreds of ms of the database's time every tick).
 */
describe("dashboard: the overview's failures of the last hour read the failed rounds only", function () {
  this.timeout(120_000);
  let opened: OpenedDatabase;

  before(async () => {
    opened = await openMigratedTestSchema();
    const knex = opened.database.knex;
    await seedVerifierAgents(knex, AGENTS, 0);
    // In time order, as the verifier appends them; agents 1, 3, 5 (tenant default) and 2 (blue) failed once.
    await knex.raw(
      `insert into verifier_attestation_history (agent_id, tenant, verifier_id, owner, attempted_at, outcome, operational_state, attestation_count)
       select 'agent-' || lpad(i::text, 6, '0'), case when i % 2 = 0 then 'blue' else 'default' end, 'default', 'bench',
         now() - make_interval(secs => r * 8 + i % 8), case when r = 100 and i in (1, 2, 3, 5) then 'fail' else 'pass' end, 3, r
       from generate_series(?::int - 1, 0, -1) as r, generate_series(1, ?::int) as i`,
      [ROUNDS, AGENTS],
    );
    await knex.raw('analyze verifier_attestation_history');
  });

  after(async () => {
    await opened.dispose();
  });

  it("counts tenant default's 3 failures reading a few rounds, not the hour's 40,000", async () => {
    const knex = opened.database.knex;
    const queries = new DashboardQueries(knex, 15, { pass: 66, liveness: 66 }, () => Date.now() / 1000);
    let failures: number | undefined;
    const reads = await capturedQueries(knex, "interval '1 hour'", async () => {
      failures = (await queries.overview('default')).failuresLastHour;
    });
    expect(failures).to.equal(3);
    expect(reads, 'the failures query').to.have.length(1);
    // Before: every round of the hour (40,000).
    expect(await rowsRead(knex, reads[0] as (typeof reads)[number], 'verifier_attestation_history')).to.be.below(100);
  });
});
