import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';
import { streamDashboardEvents } from '../../lib/dashboard/dashboard-events.js';
import type { FleetOverview } from '../../lib/dashboard/dashboard-queries.js';
import type { NodeRow } from '../../lib/dashboard/node-row.js';

const OVERVIEW = { total: 1 } as unknown as FleetOverview;
const ROW = { agentId: 'agent-1', tenant: 'default', status: 'PASS', tone: 'pass' } as unknown as NodeRow;

/**
 * The overview is shared and read one at a time for the whole dashboard (SharedOverview), so with many
 * tenants it can take longer than a tick. A tick waited for it before it sent the watched rows: a row
 * that failed was sent only once every tenant's overview ahead of it had been read.
 */
describe('dashboard events: a slow overview does not hold the rows back', function () {
  this.timeout(10_000);
  let app: FastifyInstance;
  let client: Socket | undefined;
  let overviewReads = 0;
  let rowReads = 0;

  before(async () => {
    app = Fastify();
    app.get('/events', (request, reply) => {
      streamDashboardEvents(request, reply, {
        queries: {
          overview: () => {
            overviewReads += 1;
            return new Promise((resolve) => setTimeout(() => resolve(OVERVIEW), 1000));
          },
          nodesByIds: () => Promise.resolve([{ ...ROW, attestationCount: (rowReads += 1) }]),
        },
        tenant: undefined,
        watched: ['agent-1'],
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

  it('an overview that takes 1 s: the rows are sent every 50 ms tick meanwhile, and the overview is asked once until it arrives', async () => {
    const { port } = app.server.address() as { port: number };
    let text = '';
    client = connect({ host: '127.0.0.1', port }, () => client?.write('GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    client.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(text.match(/event: agents\n/g) ?? [], text).to.have.length.of.at.least(5);
    expect(text).to.not.include('event: overview');
    expect(overviewReads).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(text).to.include('event: overview');
  });
});
