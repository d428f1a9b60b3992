import { createServer, type Server, type TLSSocket } from 'node:tls';
import { expect } from 'chai';
import { BadRemoteReplyError, ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { OFF_THREAD_REPLY_BYTES, OffThreadJson } from '../../lib/http/off-thread-json.js';
import { MAX_REPLY_JSON_VALUES } from '../../lib/http/repeated-member-json.js';
import { ThinHttpsClient } from '../../lib/http/thin-https-client.js';
import { tlsFixture } from './tls-fixture.js';

/**
 * The thin client against a bare TLS server whose every byte the test writes: one kept-alive connection
 * for many requests, requests queued in order, a kept-alive connection the server closed, a reply cut
 * short, bytes that are not HTTP.
 */
describe('http: thin keep-alive HTTPS client', function () {
  const fixture = tlsFixture();
  let server: Server;
  let port: number;
  let connections: number;
  let sockets: TLSSocket[];
  /** What the server does with each complete request head it reads on a socket. */
  let onRequest: (socket: TLSSocket, head: string) => void;

  const envelope = (results: unknown): string => {
    const body = JSON.stringify({ code: 200, status: 'Success', results });
    return `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  };

  before(async function () {
    server = createServer({ cert: fixture.agent.certPem, key: fixture.agent.keyPem }, (socket) => {
      connections += 1;
      sockets.push(socket);
      let buffered = '';
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        let end: number;
        while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
          const head = buffered.slice(0, end);
          const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
          if (buffered.length < end + 4 + length) return;
          buffered = buffered.slice(end + 4 + length);
          onRequest(socket, head);
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  beforeEach(function () {
    connections = 0;
    sockets = [];
  });

  after(function () {
    server.close();
  });

  /**
   * The default deadline is far beyond what a CI host's stall of this process (~3 s) can use up: the
   * server's answer and the deadline's timer, both due in a stall, run in that order, but the client reads
   * the answer only after every due timer has run.
   */
  const client = (timeoutMs = 10_000): ThinHttpsClient =>
    new ThinHttpsClient({ baseUrl: `https://127.0.0.1:${port}`, tls: { pinnedServerCert: fixture.agent.certPem }, timeoutMs });

  it('sends every request over one kept-alive connection, in the order asked, with Host and the body', async function () {
    const heads: string[] = [];
    onRequest = (socket, head) => {
      heads.push(head);
      socket.write(envelope({ n: heads.length }));
    };
    const thin = client();
    const replies = await Promise.all([
      thin.request('GET', '/v2.2/quotes/integrity?nonce=a'),
      thin.request('POST', '/v2.2/keys/vkey', '{"encrypted_key":"é"}'),
      thin.request('GET', '/version'),
    ]);
    expect(replies).to.deep.equal([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(connections).to.equal(1);
    expect(heads[0]).to.match(new RegExp(`^GET /v2.2/quotes/integrity\\?nonce=a HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`));
    expect(heads[1]).to.include('Content-Length: 22'); // 21 characters, é in two UTF-8 bytes
    expect(heads[2]).to.match(/^GET \/version HTTP\/1.1/);
    thin.close();
  });

  it('sends a GET again on a fresh connection when the kept-alive one was closed by the server, but not a POST', async function () {
    onRequest = (socket) => socket.write(envelope({ ok: true }));
    const thin = client();
    expect(thin.connectionSerial(), 'no connection yet').to.equal(undefined);
    expect(await thin.request('GET', '/a')).to.deep.equal({ ok: true });
    const first = thin.connectionSerial();
    expect(first).to.be.a('number');
    // The server drops the idle connection just as the next request goes out.
    onRequest = (socket) => {
      onRequest = (next) => next.write(envelope({ again: true }));
      socket.destroy();
    };
    expect(await thin.request('GET', '/b')).to.deep.equal({ again: true });
    expect(connections).to.equal(2);
    expect(thin.connectionSerial(), 'a new connection has a new serial').to.be.a('number').and.not.equal(first);
    onRequest = (socket) => socket.destroy();
    const posted = await thin.request('POST', '/c', '{}').catch((error: unknown) => error);
    expect(posted).to.be.instanceOf(ServiceUnreachableError);
    expect((posted as ServiceUnreachableError).reason).to.equal('network');
    thin.close();
  });

  it('fails a reply cut short, bytes that are not HTTP and a silent server with typed errors, then works again', async function () {
    // 4 s: a deadline falling due in the same stall as the answer would fail the request as a timeout.
    const thin = client(4000);
    onRequest = (socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"code":');
    const cut = await thin.request('GET', '/cut').catch((error: unknown) => error);
    expect(cut).to.be.instanceOf(ServiceUnreachableError);
    expect((cut as Error).message).to.match(/closed before the response body ended/);
    onRequest = (socket) => socket.write('SSH-2.0-OpenSSH_9.6\r\n\r\n');
    const notHttp = await thin.request('GET', '/ssh').catch((error: unknown) => error);
    expect(notHttp).to.be.instanceOf(BadRemoteReplyError);
    onRequest = () => undefined;
    const silent = await thin.request('GET', '/silent').catch((error: unknown) => error);
    expect((silent as ServiceUnreachableError).reason).to.equal('timeout');
    onRequest = (socket) => socket.write(envelope({ back: true }));
    expect(await thin.request('GET', '/back')).to.deep.equal({ back: true });
    expect(await thin.request('GET', '/bad path').catch((error: unknown) => error)).to.be.instanceOf(TypeError);
    thin.close();
  });

  it('fails a reply dripped slower than the deadline, drops its connection, and sends the queued request on a fresh one', async function () {
    // Without a whole-exchange deadline the drip never ends the request: fail at this, not at mocha's 60 s.
    this.timeout(15_000);
    const drips: NodeJS.Timeout[] = [];
    onRequest = (socket, head) => {
      if (head.startsWith('GET /queued ')) {
        socket.write(envelope({ queued: true }));
        return;
      }
      // A byte every 50 ms: never idle for the 300 ms the client allows, never complete either.
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{"code": 200, "results": "');
      drips.push(setInterval(() => socket.write('r'), 50));
      socket.on('close', () => drips.forEach(clearInterval));
    };
    const thin = client(4000);
    const started = Date.now();
    const dripped = thin.request('GET', '/v2.6/quotes/integrity?nonce=n').catch((error: unknown) => error);
    // Asked for 3.5 s later: its own deadline leaves it 3.5 s after the dripped one's, more than a CI host's
    // stall of this process (~3 s), in which both deadlines would fall due and fire before it is sent.
    await new Promise((resolve) => setTimeout(resolve, 3500));
    const queued = thin.request('GET', '/queued');
    const error = await dripped;
    expect(Date.now() - started).to.be.within(3950, 12_000);
    expect(error).to.be.instanceOf(ServiceUnreachableError);
    expect(error).to.deep.include({ reason: 'timeout', url: `https://127.0.0.1:${port}/v2.6/quotes/integrity?nonce=n` });
    expect((error as Error).message).to.match(/no complete reply within 4000 ms/);
    expect(await queued).to.deep.equal({ queued: true });
    expect(connections, 'the half-read connection is not used again').to.equal(2);
    thin.close();
    drips.forEach(clearInterval);
  });

  it(`refuses a reply of more than ${MAX_REPLY_JSON_VALUES} JSON values as a bad reply, before it is parsed (hunt H5)`, async function () {
    const thin = client(5000);
    // 32 MiB of `{}` took JSON.parse alone 8.5 s of the event loop; 2 MiB shows the refusal.
    const many = Array.from({ length: 700_000 }, () => ({}));
    onRequest = (socket) => socket.write(envelope({ quote: 'r', pad: many }));
    const refused = await thin.request('GET', '/quotes/integrity').catch((error: unknown) => error);
    expect(refused).to.be.instanceOf(BadRemoteReplyError);
    onRequest = (socket) => socket.write(envelope({ quote: 'r', pad: many.slice(0, MAX_REPLY_JSON_VALUES - 8) }));
    expect(await thin.request('GET', '/quotes/integrity')).to.have.property('quote', 'r');
    thin.close();
  });

  it('counts the time a request waited behind another against its deadline', async function () {
    // The first is answered 1 s after it arrives, the second 4 s after: the second, asked for with the
    // first, would complete 5 s after it was asked for, past the 4.5 s it may take (its deadline counted
    // from its sending, 1 s later, would let it complete). The first's answer comes 3.5 s before its
    // deadline: more than a CI host's stall of this process (~3 s), in which both would fall due and the
    // deadline would fire before the answer is read. A timeout shows the second failed before its answer.
    const answers: NodeJS.Timeout[] = [];
    onRequest = (socket, head) => void answers.push(setTimeout(() => socket.write(envelope({ ok: true })), head.startsWith('GET /first ') ? 1000 : 4000));
    const thin = client(4500);
    const first = thin.request('GET', '/first');
    const second = thin.request('GET', '/second').catch((error: unknown) => error);
    expect(await first).to.deep.equal({ ok: true });
    const error = await second;
    expect(error).to.be.instanceOf(ServiceUnreachableError);
    expect(error).to.deep.include({ reason: 'timeout', url: `https://127.0.0.1:${port}/second` });
    // The second's answer is still to come: not left to the next test, which counts the pending timers.
    answers.forEach(clearTimeout);
    thin.close();
  });

  it('keeps a request\'s first deadline when it is sent again after a closed kept-alive connection', async function () {
    onRequest = (socket) => socket.write(envelope({ ok: true }));
    const thin = client(4000);
    expect(await thin.request('GET', '/warm')).to.deep.equal({ ok: true });
    // The kept-alive connection is closed 500 ms after the request arrives, unanswered; the request
    // goes out again on a fresh connection, where it is answered 3.7 s later: 4.2 s in all, past the
    // 4 s deadline, within one counted from the sending again (4.5 s). The close comes 3.5 s before the
    // deadline: more than a CI host's stall of this process (~3 s), in which the deadline would fire
    // before the close is seen and the request never sent again. A timeout shows it failed before its answer.
    const answers: NodeJS.Timeout[] = [];
    onRequest = (socket) => {
      onRequest = (next) => void answers.push(setTimeout(() => next.write(envelope({ late: true })), 3700));
      setTimeout(() => socket.destroy(), 500);
    };
    const error = await thin.request('GET', '/resent').catch((failure: unknown) => failure);
    expect(error).to.be.instanceOf(ServiceUnreachableError);
    expect(error).to.deep.include({ reason: 'timeout' });
    expect(connections).to.equal(2);
    // The late answer is still to come: not left to the next test, which counts the pending timers.
    answers.forEach(clearTimeout);
    thin.close();
  });

  it('reads a reply body of at most OFF_THREAD_REPLY_BYTES on the event loop, starting no thread, and a larger one in its OffThreadJson', async function () {
    const reader = new OffThreadJson();
    const thin = new ThinHttpsClient({ baseUrl: `https://127.0.0.1:${port}`, tls: { pinnedServerCert: fixture.agent.certPem }, timeoutMs: 10_000, offThreadJson: reader });
    const emptyBody = JSON.stringify({ code: 200, status: 'Success', results: { s: '' } }).length;
    let results: unknown;
    onRequest = (socket) => socket.write(envelope(results));
    try {
      results = { s: 'x'.repeat(OFF_THREAD_REPLY_BYTES - emptyBody) };
      expect(await thin.request('GET', '/at-the-bound')).to.deep.equal(results);
      expect(reader.threadIds, 'a body of the bound is read on the event loop').to.deep.equal([]);
      results = { s: 'x'.repeat(OFF_THREAD_REPLY_BYTES - emptyBody + 1) };
      expect(await thin.request('GET', '/past-the-bound')).to.deep.equal(results);
      expect(reader.threadIds, 'a larger one in the thread').to.have.lengthOf(1);
    } finally {
      thin.close();
      await reader.close();
    }
  });

  it('leaves no timer pending once its requests have ended', async function () {
    const pendingTimers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    // Mocha arms this test's own timeout timer once the test has started.
    await new Promise((resolve) => setImmediate(resolve));
    const before = pendingTimers();
    onRequest = (socket) => socket.write(envelope({ ok: true }));
    const thin = client(60_000);
    for (let n = 0; n < 3; n += 1) expect(await thin.request('GET', `/r${n}`)).to.deep.equal({ ok: true });
    expect(pendingTimers(), 'answered requests').to.equal(before);
    onRequest = () => undefined;
    const closed = thin.request('GET', '/unanswered').catch((error: unknown) => error);
    while (sockets.length === 0) await new Promise((resolve) => setImmediate(resolve));
    thin.close();
    expect(await closed).to.be.instanceOf(ServiceUnreachableError);
    expect(pendingTimers(), 'a request failed by close').to.equal(before);
  });

  it('close fails the request in flight and the queued ones, and sends none of them again', async function () {
    const heads: string[] = [];
    onRequest = (_socket, head) => heads.push(head);
    const thin = client();
    const inFlight = thin.request('GET', '/in-flight').catch((error: unknown) => error);
    const queued = thin.request('GET', '/queued').catch((error: unknown) => error);
    while (heads.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    thin.close();
    for (const failed of [await inFlight, await queued]) {
      expect(failed).to.be.instanceOf(ServiceUnreachableError);
      expect((failed as Error).message).to.match(/the client was closed/);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(heads).to.have.length(1);
    expect(connections).to.equal(1);
  });
});
