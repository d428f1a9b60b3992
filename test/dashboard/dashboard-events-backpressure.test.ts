import type { ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';
import { MAX_QUEUED_BYTES, MAX_WATCHED_NODES, streamDashboardEvents } from '../../lib/dashboard/dashboard-events.js';
import type { FleetOverview } from '../../lib/dashboard/dashboard-queries.js';
import type { NodeRow } from '../../lib/dashboard/node-row.js';

/** A watched row of about 2.5 kB; every watched row changes at every tick. */
const ROW: NodeRow = {
  agentId: 'agent-000001',
  tenant: 'default',
  state: 3,
  label: 'Get Quote',
  status: 'PASS',
  stale: false,
  tableState: 'Get Quote',
  tone: 'pass',
  trustLevel: 'hardware-tpm',
  trustShown: 'hardware-tpm (claimed)',
  liveness: null,
  integrityEvidence: null,
  lastSeen: null,
  lastFailure: null,
  attestationCount: 1,
  lastSuccess: new Date().toISOString(),
  lastEventId: 'x'.repeat(2000),
  runtimePolicy: 'runtime-policy',
  mbPolicy: 'mb-policy',
  ip: '10.0.0.1',
  port: 9002,
};
const OVERVIEW: FleetOverview = {
  total: 1000,
  byState: [],
  byStatus: { PASS: 1000, FAIL: 0, PENDING: 0 },
  stalePasses: 0,
  attestationsLastMinute: 0,
  failuresLastHour: 0,
  lateRounds: 0,
  byClaimedTrustLevel: { 'hardware-tpm': 1000, 'emulated-tpm': 0, 'id-secret': 0, 'id-only': 0, unknown: 0 },
  byLiveness: { 'id-secret': { alive: 0, pending: 0, unreachable: 0, failed: 0 }, 'id-only': { alive: 0, pending: 0, unreachable: 0, failed: 0 } },
};

/**
 * A tab that never reads its live updates (a stopped laptop, a hostile client): every tick's events
 * were written regardless, so the verifier queued them without limit (M1). The stream is dropped
 * once more than MAX_QUEUED_BYTES wait for the client.
 */
describe('dashboard events: a client that does not read', function () {
  this.timeout(30_000);
  let app: FastifyInstance;
  let response: ServerResponse | undefined;
  let closes = 0;
  let ticks = 0;
  let client: Socket | undefined;

  before(async () => {
    app = Fastify();
    app.get('/events', (request, reply) => {
      response = reply.raw;
      streamDashboardEvents(request, reply, {
        queries: { overview: () => Promise.resolve(OVERVIEW), nodesByIds: (_tenant, ids) => Promise.resolve(ids.map((agentId) => ({ ...ROW, agentId, attestationCount: (ticks += 1) }))) },
        tenant: undefined,
        watched: Array.from({ length: MAX_WATCHED_NODES }, (_, n) => `agent-${n}`),
        tickMs: 50,
        stillValid: () => Promise.resolve(true),
        onClose: () => (closes += 1),
      });
      return reply;
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    client?.destroy();
    await app.close();
  });

  it('is dropped once more than MAX_QUEUED_BYTES wait for it, instead of queueing without limit', async () => {
    const { port } = app.server.address() as { port: number };
    client = connect({ host: '127.0.0.1', port }, () => client?.write('GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    client.pause();
    let mostQueued = 0;
    const started = Date.now();
    // The kernel's buffers fill first (a few MB on loopback), then the stream's own queue.
    while (closes === 0 && Date.now() - started < 15_000) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      mostQueued = Math.max(mostQueued, response?.writableLength ?? 0);
    }
    expect(closes, `most bytes queued ${mostQueued}`).to.equal(1);
    // At most one tick (≈ 130 kB) beyond the cap is written before the next tick sees it.
    expect(mostQueued).to.be.above(0).and.below(MAX_QUEUED_BYTES + 1024 * 1024);
    expect(response?.destroyed).to.equal(true);
  });
});
