import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { dashboardPerSuite, viewerToken } from './dashboard-viewer.js';
import { storeNodeAnsweringAs } from './node-history.js';

/** A node without a TPM answers with an id that holds a line of a timeline of its own: a state change that never was. */
const FORGED_LINE = 'other\r\n2026-12-07T00:00:00.000Z PENDING → LIVE (no integrity evidence)';
/** A policy named at enrolment (`runtime_policy_name` is any text of up to 255 characters): a line feed and a right-to-left override. */
const POLICY_NAME = 'rp-1\nrp-2 \u202egnp.lanigiro';
/** A token's subject, as its issuer typed it. */
const SUBJECT = 'ops\nadmin \u202enimda';

/**
 * Liveness reasons, a node's last failure, policy names and token subjects are one line each, but
 * a line feed in them (a node's answer, an enrolment's policy name) was shown as it was: in the
 * timeline's context box it started a line of the node's choosing, such as a state change that never
 * was. Policy names and subjects were shown with their invisible characters applied, too. Each is
 * shown with its line feeds, carriage returns and invisible characters as `\uXXXX` escapes.
 */
describe('dashboard: line feeds and invisible characters in one-line fields are shown as escapes', function () {
  this.timeout(60_000);
  const dashboard = dashboardPerSuite('ironlime-dashboard-one-line-');

  before(async function () {
    const knex = dashboard.suite.database.database.knex;
    // agent-000001 is tenant `default`.
    await seedVerifierAgents(knex, 1, 0);
    await knex('verifier_runtime_policies').insert({ name: POLICY_NAME, tenant: 'default', runtime_policy: '{}', checksum: '0'.repeat(64), generator: 2 });
    await knex('verifier_agents').update({ runtime_policy_name: POLICY_NAME }).where({ agent_id: 'agent-000001' });
    const failed = await storeNodeAnsweringAs(knex, 'live-lines', 'elsewhere', FORGED_LINE);
    expect(failed.lastFailure).to.include(FORGED_LINE);
  });

  it("a liveness answer's line feed: escaped in the node's last failure and in its timeline's reason", async function () {
    const page = await dashboard.get('/dashboard/nodes/live-lines');
    expect(page.status).to.equal(200);
    expect(page.body).to.not.include('\n2026-12-07T00:00:00.000Z').and.not.include('\r');
    const shown = 'names another agent (other\\u000d\\u000a2026-12-07T00:00:00.000Z PENDING → LIVE (no integrity evidence))';
    expect(page.body.split(shown), 'the last failure and the timeline').to.have.length(3);
  });

  it('a policy name: escaped on the node page and the policies page', async function () {
    const shown = 'rp-1\\u000arp-2 \\u202egnp.lanigiro';
    for (const url of ['/dashboard/nodes/agent-000001', '/dashboard/policies']) {
      const page = await dashboard.get(url);
      expect(page.status, url).to.equal(200);
      expect(page.body, url).to.not.include('\u202e').and.not.include('rp-1\nrp-2');
      expect(page.body, url).to.include(shown);
    }
  });

  it("a token's subject: escaped where the page says who is logged in", async function () {
    const token = await viewerToken(dashboard.suite.dataDir, 'default', SUBJECT);
    const reply = await dashboard.suite.verifier.service.app.inject({ method: 'GET', url: '/dashboard', headers: { authorization: `Bearer ${token}` } });
    expect(reply.statusCode).to.equal(200);
    expect(reply.body).to.not.include('\u202e');
    expect(reply.body).to.include('token:ops\\u000aadmin \\u202enimda (viewer@default)');
  });
});
