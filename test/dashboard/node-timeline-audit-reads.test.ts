import { expect } from 'chai';
import type { NodeRow } from '../../lib/dashboard/node-row.js';
import { readNodeTimeline } from '../../lib/dashboard/node-timeline.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { appendBulkAuditRecords } from '../helpers/bulk-audit-records.js';
import { capturedQueries, totalRowsRead } from '../helpers/rows-read.js';

/** Verdict records in the node's stream (and in another's): one per round, about 43,000 a day at a 2 s interval. */
const VERDICTS = 20_000;
const NODE = { agentId: 'agent-000001', tenant: 'default', runtimePolicy: 'pol-a', mbPolicy: null, liveness: null } as unknown as NodeRow;

/**
 * A node page lists the node's admin actions (and its policies' changes) from the audit log, whose
 * node stream also holds a verdict record per round, kept for ever by default: it found the few
 * actions among every verdict of the stream at every view (a node attested for a month: 1.3 million).
 */
describe('dashboard: a node page reads its admin actions, not every verdict of its audit stream', function () {
  this.timeout(120_000);
  let opened: OpenedDatabase;

  before(async () => {
    opened = await openMigratedTestSchema();
    const knex = opened.database.knex;
    await appendBulkAuditRecords(knex, 'agent-000001', 'agent-000001', 1, 1, 3 * VERDICTS, 'agent.add', 'cert:tenant', '{"params":{}}');
    await appendBulkAuditRecords(knex, 'agent-000001', 'agent-000001', 2, VERDICTS, 2000, 'verdict', 'verifier:v1', '{"outcome":"pass"}');
    await appendBulkAuditRecords(knex, 'agent-000001', 'agent-000001', 2 + VERDICTS, 1, 1000, 'agent.stop', 'token:ops (operator@default)', '{"params":{},"tenant":"default"}');
    // Another tenant's token refused on the id: kept in the log, not shown on this tenant's page.
    await appendBulkAuditRecords(knex, 'agent-000001', 'agent-000001', 3 + VERDICTS, 1, 900, 'agent.delete', 'token:x (admin@blue)', '{"params":{},"tenant":"blue"}');
    await appendBulkAuditRecords(knex, 'agent-000001', 'agent-000001', 4 + VERDICTS, 100, 0, 'verdict', 'verifier:v1', '{"outcome":"pass"}');
    await appendBulkAuditRecords(knex, 'agent-000002', 'agent-000002', 1, VERDICTS, 0, 'verdict', 'verifier:v1', '{"outcome":"pass"}');
    await appendBulkAuditRecords(knex, 'fleet', 'fleet', 1, 1, 500, 'policy.put', 'cert:tenant', '{"params":{"name":"pol-a"}}');
    await appendBulkAuditRecords(knex, 'fleet', 'fleet', 2, 1, 400, 'policy.put', 'cert:tenant', '{"params":{"name":"pol-b"}}');
    await knex.raw('analyze audit_records');
  });

  after(async () => {
    await opened.dispose();
  });

  it("shows the node's actions and its policy's, newest first, reading a few records, not its 20,100 verdicts", async () => {
    const knex = opened.database.knex;
    let timeline: Awaited<ReturnType<typeof readNodeTimeline>> = [];
    const queries = await capturedQueries(knex, 'audit_records', async () => {
      timeline = await readNodeTimeline(knex, NODE, 'default');
    });
    expect(timeline.map((entry) => entry.title)).to.deep.equal(['policy.put by cert:tenant', 'agent.stop by token:ops (operator@default)', 'agent.add by cert:tenant']);
    expect(queries, 'the audit reads').to.have.length.above(0);
    const read = await totalRowsRead(knex, queries, 'audit_records');
    // Before: every record of the node's stream (20,104), and the fleet's.
    expect(read).to.be.below(1000);
  });
});
