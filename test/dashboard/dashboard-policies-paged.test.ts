import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { dashboardPerSuite } from './dashboard-viewer.js';

/** Agents seeded: the odd ids (150) are tenant default's, the even ones blue's; each has its own inline policy. */
const AGENTS = 300;

function shownPolicies(body: string): string[] {
  return [...body.matchAll(/<tr><td>runtime<\/td><td>([^<]*)<\/td>/g)].map((match) => match[1] as string);
}

/**
 * Keylime's inline policies are stored one per agent, under its id: the policies page listed every one
 * the viewer's agents use, a row per agent of the fleet on one page (1 MB at 10,000 agents).
 */
describe('dashboard: the policies page is paged', function () {
  this.timeout(60_000);
  const dashboard = dashboardPerSuite('ironlime-dashboard-policies-');

  before(async () => {
    const knex = dashboard.suite.database.database.knex;
    await seedVerifierAgents(knex, AGENTS, 0);
    await knex.raw(`insert into verifier_runtime_policies (name, runtime_policy, checksum, generator, tenant) select agent_id, '{}', '', 2, tenant from verifier_agents`);
    await knex('verifier_agents').update({ runtime_policy_name: knex.ref('agent_id') });
  });

  it("shows 100 of tenant default's 150 policies a page, by name, and the next page the rest; never tenant blue's", async () => {
    const first = await dashboard.get('/dashboard/policies');
    expect(first.status).to.equal(200);
    expect(first.body).to.include('150 policies in use, page 1 of 2').and.include('href="/dashboard/policies?page=2" rel="next"');
    const second = await dashboard.get('/dashboard/policies?page=2');
    expect(second.body).to.include('page 2 of 2').and.include('href="/dashboard/policies?page=1" rel="prev"');
    const odd = Array.from({ length: AGENTS / 2 }, (_, n) => `agent-${String(2 * n + 1).padStart(6, '0')}`);
    expect(shownPolicies(first.body)).to.deep.equal(odd.slice(0, 100));
    expect(shownPolicies(second.body)).to.deep.equal(odd.slice(100));
    // A page past the end shows the last one.
    expect(shownPolicies((await dashboard.get('/dashboard/policies?page=9')).body)).to.deep.equal(odd.slice(100));
  });
});
