import { expect } from 'chai';
import type { NodeRow } from '../../lib/dashboard/node-row.js';
import { readNodeTimeline, REFUSALS_SHOWN } from '../../lib/dashboard/node-timeline.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { appendBulkAuditRecords } from '../helpers/bulk-audit-records.js';
import { capturedQueries, totalRowsRead } from '../helpers/rows-read.js';

const NODE = { agentId: 'agent-000001', tenant: 'default', runtimePolicy: 'pol-a', mbPolicy: null, liveness: null } as unknown as NodeRow;
const ENROLMENT = 'POST /agents/:agent_id by token:ops (admin@default)';
const POLICY_CHANGE = 'PUT /allowlists/:name by cert:tenant';

/**
 * Any operator token may send as many refused requests as it likes, each one an audit record: on a
 * policy's name (another tenant's token too: a 404) in the `fleet` stream, on the node's id in its own
 * stream. A node page read the newest 2,000 records naming its policy before leaving out other
 * tenants', and showed the newest 500 of its own and its policies' records together: a flood of refused
 * requests pushed the policy's real changes and the node's enrolment off the page.
 */
describe('dashboard: refused requests never hide a node\'s enrolment or its policies\' changes [postgres]', function () {
  this.timeout(120_000);
  let opened: OpenedDatabase;

  before(async () => {
    opened = await openMigratedTestSchema();
    const knex = opened.database.knex;
    await appendBulkAuditRecords(knex, NODE.agentId, NODE.agentId, 1, 1, 9000, 'POST /agents/:agent_id', 'token:ops (admin@default)', '{"params":{"agent_id":"agent-000001"},"status":200,"tenant":"default"}');
    await appendBulkAuditRecords(knex, 'fleet', null, 1, 1, 8000, 'PUT /allowlists/:name', 'cert:tenant', '{"params":{"name":"pol-a"},"status":200}');
    // Another tenant's token on the policy's name: refused (404), and hidden from a viewer of `default`.
    await appendBulkAuditRecords(knex, 'fleet', null, 2, 3000, 4000, 'PUT /allowlists/:name', 'token:x (operator@blue)', '{"params":{"name":"pol-a"},"status":404,"tenant":"blue"}');
    // The node's own tenant's viewer token: refused (403) on the policy and on the node.
    await appendBulkAuditRecords(knex, 'fleet', null, 3002, 700, 900, 'PUT /allowlists/:name', 'token:v (viewer@default)', '{"params":{"name":"pol-a"},"status":403,"tenant":"default"}');
    await appendBulkAuditRecords(knex, NODE.agentId, NODE.agentId, 2, 700, 100, 'PUT /agents/:agent_id/stop', 'token:v (viewer@default)', '{"params":{"agent_id":"agent-000001"},"status":403,"tenant":"default"}');
    await knex.raw('analyze audit_records');
  });

  after(async () => {
    await opened.dispose();
  });

  for (const [viewer, tenant] of [['a viewer of the node\'s tenant', 'default'], ['an admin of every tenant', undefined]] as const) {
    it(`${viewer} sees the enrolment and the policy's change past the flood, and at most ${REFUSALS_SHOWN} refusals of each source`, async () => {
      const titles = (await readNodeTimeline(opened.database.knex, NODE, tenant)).map((entry) => entry.title);
      expect(titles).to.include(ENROLMENT);
      expect(titles).to.include(POLICY_CHANGE);
      expect(titles.filter((title) => title.includes('(viewer@default)')).length).to.equal(2 * REFUSALS_SHOWN);
      // The other tenant's refusals are older than the node's tenant's: past the cap for an admin too.
      expect(titles.filter((title) => title.includes('(operator@blue)'))).to.deep.equal([]);
    });
  }

  it("reads the policy's successful changes through their index and its refusals up to the cap, not the 3,700 refused requests", async () => {
    const knex = opened.database.knex;
    const queries = await capturedQueries(knex, 'audit_records', async () => {
      await readNodeTimeline(knex, NODE, 'default');
    });
    const read = await totalRowsRead(knex, queries.filter((sent) => sent.bindings.includes('fleet')), 'audit_records');
    expect(read).to.be.below(4 * REFUSALS_SHOWN);
  });
});
