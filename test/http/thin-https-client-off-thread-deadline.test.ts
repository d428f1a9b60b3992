import { createServer, type Server } from 'node:tls';
import { expect } from 'chai';
import { ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { JsonReplyUnread, OffThreadJson } from '../../lib/http/off-thread-json.js';
import { ThinHttpsClient } from '../../lib/http/thin-https-client.js';
import { tlsFixture } from './tls-fixture.js';

const FAULTY_WORKER = new URL('./fixtures/faulty-off-thread-worker.js', import.meta.url);
const MIB = 1024 * 1024;

/**
 * A reply body over 1 MiB is read in the verifier's `OffThreadJson` (one thread, a queue). The request's
 * deadline was cleared once the reply's last byte came, so a reply waiting for the thread behind a
 * slow parse was judged whenever its turn came, long past its round's `requestTimeout`, and the round
 * ended with a verdict instead of no answer. The deadline now runs until the body is read.
 */
describe('http: a thin client\'s reply read off the event loop stays under the request\'s deadline', function () {
  this.timeout(60_000);
  const fixture = tlsFixture();
  let server: Server;
  let port: number;

  /** The reply to each path: a body that sticks its thread (`"hangNow"`), or a 2 MiB envelope. */
  const reply = (head: string): string => {
    const body = head.startsWith('GET /hang ') ? `"hangNow"${' '.repeat(2 * MIB)}` : JSON.stringify({ code: 200, status: 'Success', results: { s: 'x'.repeat(2 * MIB) } });
    return `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  };

  before(async function () {
    server = createServer({ cert: fixture.agent.certPem, key: fixture.agent.keyPem }, (socket) => {
      let buffered = '';
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        socket.write(reply(head));
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  after(function () {
    server.close();
  });

  it('fails as a timeout a reply whose body waits for the thread past the deadline, not with its value once parsed', async function () {
    // The stuck parse is ended after 20 s; the second reply's deadline is 5 s.
    const reader = new OffThreadJson({ threads: 1, timeoutMs: 20_000, script: FAULTY_WORKER });
    const clientOf = (timeoutMs: number): ThinHttpsClient => new ThinHttpsClient({ baseUrl: `https://127.0.0.1:${port}`, tls: { pinnedServerCert: fixture.agent.certPem }, timeoutMs, offThreadJson: reader });
    const sticking = clientOf(60_000);
    const waiting = clientOf(5_000);
    const outcome = (promise: Promise<unknown>): Promise<unknown> => promise.then((results) => ({ results }), (error: unknown) => error);
    try {
      const stuck = outcome(sticking.request('GET', '/hang'));
      while (reader.threadIds.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      const late = await outcome(waiting.request('GET', '/large'));
      expect(late, 'no value: the round has no answer').to.be.instanceOf(ServiceUnreachableError);
      expect((late as ServiceUnreachableError).reason).to.equal('timeout');
      expect((late as Error).message).to.include('the reply was not parsed within 5000 ms');
      await reader.close();
      expect(await stuck).to.be.instanceOf(JsonReplyUnread);
    } finally {
      sticking.close();
      waiting.close();
      await reader.close();
    }
  });
});
