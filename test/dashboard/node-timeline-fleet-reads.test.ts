import { expect } from 'chai';
import type { NodeRow } from '../../lib/dashboard/node-row.js';
import { readNodeTimeline } from '../../lib/dashboard/node-timeline.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { appendBulkAuditRecords } from '../helpers/bulk-audit-records.js';
import { capturedQueries, totalRowsRead } from '../helpers/rows-read.js';

/** Refused admin requests of an operator token: each one a record of the `fleet` stream. */
const REFUSED = 20_000;
const NODE = { agentId: 'agent-000001', tenant: 'default', runtimePolicy: 'pol-a', mbPolicy: 'mb-a', liveness: null } as unknown as NodeRow;

/**
 * A node page shows the changes of the policies its node uses, found in the `fleet` audit stream,
 * which also records every refused admin request with an operator token (an agent id the request
 * could not name, a policy refused): the page parsed every record of the stream as JSON to find them,
 * so any authenticated user could make every node page slower (200,000 records: 0.3 s a view).
 */
describe('dashboard: a node page finds its policies\' changes without reading the whole fleet stream [postgres]', function () {
  this.timeout(120_000);
  let opened: OpenedDatabase;

  before(async () => {
    opened = await openMigratedTestSchema();
    const knex = opened.database.knex;
    await appendBulkAuditRecords(knex, 'fleet', null, 1, 1, 3 * REFUSED, 'PUT /allowlists/:name', 'cert:tenant', '{"params":{"name":"pol-a"},"status":200}');
    await appendBulkAuditRecords(knex, 'fleet', null, 2, REFUSED, 2000, 'DELETE /agents/:agent_id', 'token:ops (operator@default)', '{"params":{"agent_id":"not an id"},"status":403,"tenant":"default"}');
    await appendBulkAuditRecords(knex, 'fleet', null, 2 + REFUSED, 1, 1000, 'PUT /mbpolicies/:name', 'token:ops (admin@default)', '{"params":{"name":"mb-a"},"status":200,"tenant":"default"}');
    // Another tenant's token on the same name: left out for a viewer of `default`.
    await appendBulkAuditRecords(knex, 'fleet', null, 3 + REFUSED, 1, 900, 'DELETE /mbpolicies/:name', 'token:x (admin@blue)', '{"params":{"name":"mb-a"},"status":404,"tenant":"blue"}');
    // A record no `jsonb` accepts (a NUL's escape, stored before such texts were escaped) names no policy and fails nothing.
    await appendBulkAuditRecords(knex, 'fleet', null, 4 + REFUSED, 1, 800, 'PUT /allowlists/:name', 'cert:tenant', String.raw`{"params":{"name":"pol-a\u0000"},"status":400}`);
    await appendBulkAuditRecords(knex, 'fleet', null, 5 + REFUSED, 1, 700, 'PUT /allowlists/:name', 'cert:tenant', '{"params":{"name":"pol-ab"},"status":200}');
    await knex.raw('analyze audit_records');
  });

  after(async () => {
    await opened.dispose();
  });

  it("shows its policies' changes newest first, reading a few records, not the 20,000 refused requests", async () => {
    const knex = opened.database.knex;
    let timeline: Awaited<ReturnType<typeof readNodeTimeline>> = [];
    const queries = await capturedQueries(knex, 'audit_records', async () => {
      timeline = await readNodeTimeline(knex, NODE, 'default');
    });
    expect(timeline.map((entry) => entry.title)).to.deep.equal(['PUT /mbpolicies/:name by token:ops (admin@default)', 'PUT /allowlists/:name by cert:tenant']);
    const read = await totalRowsRead(knex, queries, 'audit_records');
    expect(read).to.be.below(100);
  });

  it('an admin (every tenant) sees the other tenant\'s action on the policy too', async () => {
    const timeline = await readNodeTimeline(opened.database.knex, NODE, undefined);
    expect(timeline.map((entry) => entry.title)).to.deep.equal([
      'DELETE /mbpolicies/:name by token:x (admin@blue)',
      'PUT /mbpolicies/:name by token:ops (admin@default)',
      'PUT /allowlists/:name by cert:tenant',
    ]);
  });
});
