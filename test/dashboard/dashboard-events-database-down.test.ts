import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';
import { streamDashboardEvents } from '../../lib/dashboard/dashboard-events.js';
import type { FleetOverview } from '../../lib/dashboard/dashboard-queries.js';
import type { NodeRow } from '../../lib/dashboard/node-row.js';

const OVERVIEW = { total: 1 } as unknown as FleetOverview;
const ROW = { agentId: 'agent-1', tenant: 'default', status: 'PASS', tone: 'pass' } as unknown as NodeRow;

/**
 * A tick whose reads failed (the database down) was only logged: the stream sent nothing, so an open
 * tab went on showing its rows green and its counts, with the footer saying "live", for as long as
 * the database was away — past the freshness bound, when the status API would no longer say PASS.
 */
describe('dashboard events: reads that fail (database down) are said, not left green', function () {
  this.timeout(10_000);
  let app: FastifyInstance;
  let client: Socket | undefined;
  /** Whether the fake database answers. */
  let up = true;

  before(async () => {
    app = Fastify({ logger: false });
    app.get('/events', (request, reply) => {
      streamDashboardEvents(request, reply, {
        queries: {
          overview: () => (up ? Promise.resolve(OVERVIEW) : Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432'))),
          nodesByIds: () => (up ? Promise.resolve([ROW]) : Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432'))),
        },
        tenant: undefined,
        watched: ['agent-1', 'agent-2'],
        tickMs: 50,
        stillValid: () => Promise.resolve(true),
        onClose: () => undefined,
      });
      return reply;
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    client?.destroy();
    await app.close();
  });

  it('the rows and counts are said unavailable while reads fail, once, and the rows are sent again when they work', async () => {
    const { port } = app.server.address() as { port: number };
    let text = '';
    client = connect({ host: '127.0.0.1', port }, () => client?.write('GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    client.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(text.match(/event: agents\n/g) ?? [], text).to.have.length(1);
    expect(text).to.not.include('event: unavailable');
    // Every tick is said, also those that changed nothing: a tab that hears none stops vouching for its rows.
    expect(text.match(/event: tick\ndata: 50\n/g) ?? [], text).to.have.length.of.at.least(2);
    up = false;
    await new Promise((resolve) => setTimeout(resolve, 400));
    const down = text.slice(text.lastIndexOf('event: agents\n'));
    expect([...down.matchAll(/event: unavailable\ndata: (.*)\n/g)].map((match) => match[1]).sort(), down).to.deep.equal(['"overview"', '"rows"']);
    expect(down.match(/event: tick\n/g) ?? [], down).to.have.length.of.at.least(2);
    up = true;
    await new Promise((resolve) => setTimeout(resolve, 400));
    const back = text.slice(text.lastIndexOf('event: unavailable\n'));
    expect(back.match(/event: agents\n/g) ?? [], back).to.have.length(1);
    expect(back).to.include('event: overview');
    // agent-2 was said gone before the outage; the tab marked it unknown during it: said gone again.
    expect(back.match(/event: gone\ndata: \["agent-2"\]\n/g) ?? [], back).to.have.length(1);
  });
});
