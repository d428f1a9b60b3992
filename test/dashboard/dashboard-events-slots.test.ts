import { connect, type TLSSocket } from 'node:tls';
import { expect } from 'chai';
import { issueApiToken } from '../../lib/auth/api-token.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Opens `/dashboard/events` with `token`; `first` resolves with the reply's first bytes (its status line). */
function openEvents(url: string, ca: string, token: string): { socket: TLSSocket; first: Promise<string> } {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
    socket.write(`GET /dashboard/events HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-ironlime_token=${token}\r\n\r\n`);
  });
  const first = new Promise<string>((resolve, reject) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
    socket.once('error', reject);
  });
  return { socket, first };
}

/**
 * The live-update route checks the viewer's token (a database read) before it opens a stream. A client
 * that left during that check leaked its slot for ever, with a query loop writing to nobody (H2): ~40
 * such requests took all 32 slots and every tenant's live view was 503. And one tenant could hold all
 * 32 slots with open tabs.
 */
describe('dashboard events: stream slots', function () {
  this.timeout(60_000);
  const suite = verifierPerSuite('ironlime-dashboard-slots-');
  let tenantA: string;
  let tenantB: string;

  before(async () => {
    const key = loadOrCreateTokenKey(suite.dataDir).privateKey;
    tenantA = await issueApiToken({ subject: 'a', role: 'viewer', tenant: 'a', ttlSeconds: 600 }, key);
    tenantB = await issueApiToken({ subject: 'b', role: 'viewer', tenant: 'b', ttlSeconds: 600 }, key);
  });

  it('releases the slot of a client gone during the token check, and runs no query for it', async () => {
    const knex = suite.database.database.knex;
    let liveQueries = 0;
    // The overview's count per trust level (a union of both node tables): no page is asked for here, so only a live-update tick runs it.
    const count = (query: { sql: string }): void => {
      if (query.sql.includes('union all')) liveQueries += 1;
    };
    knex.on('query', count);
    try {
      const { hostname, port } = new URL(suite.verifier.url);
      await Promise.all(
        Array.from({ length: 40 }, () => new Promise<void>((resolve) => {
          const socket = connect({ host: hostname, port: Number(port), ca: suite.verifier.caCert, servername: 'localhost' }, () => {
            socket.write(`GET /dashboard/events HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-ironlime_token=${tenantA}\r\n\r\n`);
            socket.destroy();
            resolve();
          });
          socket.on('error', () => resolve());
        })),
      );
      await sleep(1000);
      liveQueries = 0;
      // Two ticks (2 s apart with this verifier's quote interval) without a client.
      await sleep(4500);
      expect(liveQueries, 'live-update queries with no client connected').to.equal(0);
    } finally {
      knex.off('query', count);
    }
    const after = openEvents(suite.verifier.url, suite.verifier.caCert, tenantA);
    expect(await after.first).to.match(/^HTTP\/1.1 200/);
    after.socket.destroy();
  });

  it("caps one tenant's open streams, so another tenant still gets its live view, and frees them when they close", async () => {
    const open = Array.from({ length: 8 }, () => openEvents(suite.verifier.url, suite.verifier.caCert, tenantA));
    for (const stream of open) expect(await stream.first).to.match(/^HTTP\/1.1 200/);
    const ninth = openEvents(suite.verifier.url, suite.verifier.caCert, tenantA);
    expect(await ninth.first).to.match(/^HTTP\/1.1 503/);
    ninth.socket.destroy();
    const other = openEvents(suite.verifier.url, suite.verifier.caCert, tenantB);
    expect(await other.first).to.match(/^HTTP\/1.1 200/);
    other.socket.destroy();
    for (const stream of open) stream.socket.destroy();
    await sleep(500);
    const again = openEvents(suite.verifier.url, suite.verifier.caCert, tenantA);
    expect(await again.first).to.match(/^HTTP\/1.1 200/);
    again.socket.destroy();
  });

  it('answers a HEAD with the stream\'s headers and no stream: it ends, holds no slot, and the connection serves the next request', async () => {
    await sleep(500);
    const { hostname, port } = new URL(suite.verifier.url);
    const heads: TLSSocket[] = [];
    try {
      for (let n = 0; n < 9; n += 1) {
        const socket = connect({ host: hostname, port: Number(port), ca: suite.verifier.caCert, servername: 'localhost' });
        heads.push(socket);
        let text = '';
        socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
        const request = (method: string): string => `${method} /dashboard/events HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-ironlime_token=${tenantA}\r\n\r\n`;
        await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
        socket.write(request('HEAD'));
        // A second HEAD on the same kept-alive connection is answered only once the first reply has ended.
        socket.write(request('HEAD'));
        for (let waited = 0; (text.match(/^HTTP\/1.1 /gm) ?? []).length < 2 && waited < 5000; waited += 50) await sleep(50);
        const statuses = text.match(/^HTTP\/1.1 \d+/gm) ?? [];
        expect(statuses, `HEAD replies on connection ${n}`).to.deep.equal(['HTTP/1.1 200', 'HTTP/1.1 200']);
        expect(text).to.match(/content-type: text\/event-stream/i);
        expect(text).not.to.include('retry:');
      }
      // Nine connections kept open after HEADs: a holder's cap is 8 streams, and a GET still gets one.
      const stream = openEvents(suite.verifier.url, suite.verifier.caCert, tenantA);
      expect(await stream.first).to.match(/^HTTP\/1.1 200/);
      stream.socket.destroy();
    } finally {
      for (const socket of heads) socket.destroy();
    }
  });

  it('a tenant with no live view gets one when four tenants hold all 32 slots: the newest stream of a tenant above its share of 4 ends', async () => {
    await sleep(500);
    const key = loadOrCreateTokenKey(suite.dataDir).privateKey;
    const tokenOf = (tenant: string) => issueApiToken({ subject: tenant, role: 'viewer', tenant, ttlSeconds: 600 }, key);
    const holders = await Promise.all(['c', 'd', 'e', 'f'].map(tokenOf));
    const open: { socket: TLSSocket; ended: boolean }[] = [];
    for (const holder of holders) {
      for (let n = 0; n < 8; n += 1) {
        const stream = openEvents(suite.verifier.url, suite.verifier.caCert, holder);
        expect(await stream.first).to.match(/^HTTP\/1.1 200/);
        const entry = { socket: stream.socket, ended: false };
        stream.socket.once('end', () => (entry.ended = true));
        open.push(entry);
      }
    }
    try {
      const fifth = openEvents(suite.verifier.url, suite.verifier.caCert, await tokenOf('g'));
      expect(await fifth.first).to.match(/^HTTP\/1.1 200/);
      open.push({ socket: fifth.socket, ended: false });
      await sleep(300);
      expect(open.filter((entry) => entry.ended), 'streams ended to make room').to.have.length(1);
      // A tenant above its share gets no slot while none is free, and evicts nobody.
      const more = openEvents(suite.verifier.url, suite.verifier.caCert, holders[0] as string);
      expect(await more.first).to.match(/^HTTP\/1.1 503/);
      more.socket.destroy();
      await sleep(300);
      expect(open.filter((entry) => entry.ended)).to.have.length(1);
    } finally {
      for (const entry of open) entry.socket.destroy();
    }
  });
});
