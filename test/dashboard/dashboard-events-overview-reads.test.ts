import type { TLSSocket } from 'node:tls';
import { connect } from 'node:tls';
import { expect } from 'chai';
import { issueApiToken } from '../../lib/auth/api-token.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';

/** Opens `/dashboard/events` with `token`; `text()` is what it read so far. */
function openEvents(url: string, ca: string, token: string): { socket: TLSSocket; text: () => string } {
  const { hostname, port } = new URL(url);
  let text = '';
  const socket = connect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
    socket.write(`GET /dashboard/events HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-ironlime_token=${token}\r\n\r\n`);
  });
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  socket.on('error', () => undefined);
  return { socket, text: () => text };
}

/**
 * Every live-update stream ran the overview (every row of its tenant counted; 68 ms at 100,000 agents)
 * at every tick, on the verifier's own connection pool: 32 open tabs, 32 overviews a tick. Streams of
 * one tenant now share one read per tick.
 */
describe('dashboard events: the overview is read once per tenant per tick', function () {
  this.timeout(60_000);
  const suite = verifierPerSuite('ironlime-dashboard-overview-reads-');

  it("8 streams of one tenant and 8 of another, for 3 ticks (2 s each): each tenant's overview read about once a tick, not 8 times", async () => {
    const key = loadOrCreateTokenKey(suite.dataDir).privateKey;
    const tokens = await Promise.all(['a', 'b'].map((tenant) => issueApiToken({ subject: tenant, role: 'viewer', tenant, ttlSeconds: 600 }, key)));
    const knex = suite.database.database.knex;
    let overviewReads = 0;
    // The overview's count of nodes without a TPM per mode and status: only the overview runs it.
    const count = (query: { sql: string }): void => {
      if (query.sql.includes('group by "identity_mode", "status"')) overviewReads += 1;
    };
    knex.on('query', count);
    const streams = tokens.flatMap((token) => Array.from({ length: 8 }, () => openEvents(suite.verifier.url, suite.verifier.caCert, token)));
    try {
      await new Promise((resolve) => setTimeout(resolve, 5000));
    } finally {
      knex.off('query', count);
      for (const stream of streams) stream.socket.destroy();
    }
    for (const stream of streams) expect(stream.text().match(/event: overview\n/g), stream.text().slice(0, 300)).to.have.length.of.at.least(2);
    // Three ticks (at 0, 2 and 4 s): 48 reads when every stream read its own.
    expect(overviewReads).to.be.at.least(2).and.at.most(2 * 4);
  });
});
