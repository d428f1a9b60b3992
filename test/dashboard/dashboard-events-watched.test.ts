import { expect } from 'chai';
import type { Knex } from 'knex';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { readDashboardEvents, sentRows } from '../helpers/read-dashboard-events.js';
import { timedHttpsCall } from '../helpers/timed-https-call.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { viewerToken } from './dashboard-viewer.js';

/** Agents seeded: half of them (the odd ids) are tenant `default`'s, more than the 1,000 rows a tick used to send at most. */
const AGENTS = 2400;

/**
 * Live updates used to send, each tick, at most 1,000 of the rows changed since the tick before, and
 * then moved past the rest: with more changed (every round rewrites its agent's row, so any fleet
 * above ~1,000 agents at a 2 s interval), a row that went FAIL or stale was never sent and stayed
 * green until a reload. And the "changed since" query scanned the whole table every tick.
 */
describe('dashboard events: the rows a tab shows are sent whatever else changed', function () {
  this.timeout(60_000);
  const suite = verifierPerSuite('ironlime-dashboard-watched-');
  let token: string;
  let bound: number;

  before(async () => {
    const knex = suite.database.database.knex;
    await seedVerifierAgents(knex, AGENTS, 0);
    // The status API reads its PCR 10 (the seed leaves it empty).
    await knex('verifier_agents').update({ ima_pcr10: JSON.stringify({ sha256: '0'.repeat(64) }) }).where({ agent_id: 'agent-000001' });
    token = await viewerToken(suite.dataDir);
    const api = await timedHttpsCall(suite.verifier.url, suite.verifier.caCert, 'GET', '/v2.3/agents/agent-000001', { authorization: `Bearer ${token}` });
    bound = Number(JSON.parse(api.body).results.freshness_bound);
    expect(bound, api.body).to.be.above(0);
  });

  it('a shown row that fails, and one that goes stale, among 1,200 changed rows: both sent; another tenant\'s never', async () => {
    const knex = suite.database.database.knex;
    const watched = '/dashboard/events?agent=agent-000001&agent=agent-000003&agent=agent-000002';
    const reading = readDashboardEvents(suite.verifier.url, suite.verifier.caCert, watched, token, 7000);
    // After the first tick: the shown rows were sent as PASS.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await knex.transaction(async (trx) => {
      // Every other row of the tenant changes after the failing one (its clock a little ahead of this process's), so they come first.
      await trx('verifier_agents').where('tenant', 'default').update({ updated_at: trx.raw("now() + interval '10 seconds'") });
      await trx('verifier_agents').where('agent_id', 'agent-000001').update({ operational_state: 9, last_event_id: 'ima.validation.ima-ng.not_in_allowlist', updated_at: trx.fn.now() });
      // Fresh for about one more second, then stale; going stale writes nothing to the row.
      await trx('verifier_agents')
        .where('agent_id', 'agent-000003')
        .update({ last_successful_attestation: new Date((Math.ceil(Date.now() / 1000) - bound) * 1000), updated_at: trx.raw("now() - interval '1 hour'") });
    });
    const rows = sentRows(await reading);
    const last = (agentId: string) => rows.filter((row) => row.agentId === agentId).at(-1);
    expect(last('agent-000001'), 'the failed row').to.deep.include({ tone: 'fail', status: 'FAIL' });
    expect(last('agent-000003'), 'the row gone stale').to.deep.include({ tone: 'pending' });
    expect(last('agent-000003')?.status).to.match(/^PENDING \(stale/);
    expect(rows.filter((row) => row.agentId === 'agent-000002'), "tenant blue's row").to.deep.equal([]);
  });

  it('a shown row deleted after it was sent: a gone event names it, once; so is a watched id not there from the start', async () => {
    const knex = suite.database.database.knex;
    const reading = readDashboardEvents(suite.verifier.url, suite.verifier.caCert, '/dashboard/events?agent=agent-000005&agent=agent-000007&agent=nobody', token, 5000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await knex('verifier_agents').where({ agent_id: 'agent-000005' }).delete();
    const text = await reading;
    expect(sentRows(text).map((row) => row.agentId).sort(), 'the first tick').to.deep.equal(['agent-000005', 'agent-000007']);
    expect([...text.matchAll(/event: gone\ndata: (.*)\n/g)].map((match) => match[1]), text.slice(0, 600)).to.deep.equal(['["nobody"]', '["agent-000005"]']);
  });

  it('a shown row deleted before the stream\'s first read (the page rendered it): named gone at the first tick', async () => {
    const knex = suite.database.database.knex;
    await knex('verifier_agents').where({ agent_id: 'agent-000009' }).delete();
    const text = await readDashboardEvents(suite.verifier.url, suite.verifier.caCert, '/dashboard/events?agent=agent-000009&agent=agent-000011', token, 2500);
    expect(sentRows(text).map((row) => row.agentId), 'the first tick').to.deep.equal(['agent-000011']);
    expect([...text.matchAll(/event: gone\ndata: (.*)\n/g)].map((match) => match[1]), text.slice(0, 600)).to.deep.equal(['["agent-000009"]']);
  });

  it("a tick's query reads the shown rows by their key, not the whole table", async () => {
    const knex = suite.database.database.knex;
    const seen: { sql: string; bindings: readonly Knex.RawBinding[] }[] = [];
    // The node relation's statement: pages and live updates run it, and only a live update runs here.
    const capture = (query: { sql: string; bindings: readonly Knex.RawBinding[] }): void => {
      if (query.sql.startsWith('select * from ((select')) seen.push(query);
    };
    knex.on('query', capture);
    try {
      await readDashboardEvents(suite.verifier.url, suite.verifier.caCert, '/dashboard/events?agent=agent-000001', token, 2500);
    } finally {
      knex.off('query', capture);
    }
    expect(seen, 'the live-update query').to.have.length.above(0);
    const query = seen[0] as { sql: string; bindings: readonly Knex.RawBinding[] };
    const plan = ((await knex.raw(`explain ${query.sql.replace(/\$\d+/g, '?')}`, [...query.bindings])) as { rows: { 'QUERY PLAN': string }[] }).rows.map((row) => row['QUERY PLAN']).join('\n');
    expect(plan, plan).to.not.match(/Seq Scan on verifier_agents/);
    // By the key (the primary key, or the tenant's (tenant, agent_id) index): not every row of the tenant filtered.
    expect(plan, plan).to.match(/Index Scan using \w+ on verifier_agents .*\n\s*Index Cond: .*agent_id/);
  });
});
