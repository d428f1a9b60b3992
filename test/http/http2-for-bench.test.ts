import { connect } from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { serverApiVersionPolicy } from '../../lib/http/api-version.js';
import { ok } from '../../lib/http/envelope.js';
import { createService, type KeylimeService } from '../../lib/http/keylime-service.js';
import { tlsFixture } from './tls-fixture.js';

/** Status of a GET over `session`, or the error that ended it. */
function get(session: ReturnType<typeof connect>, path: string): Promise<number | string> {
  return new Promise((resolve) => {
    if (session.destroyed) {
      resolve('session destroyed');
      return;
    }
    const stream = session.request({ ':method': 'GET', ':path': path });
    let status: number | undefined;
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('error', (error: Error) => resolve(error.message));
    stream.on('close', () => resolve(status ?? 'closed without an answer'));
    stream.resume();
    stream.end();
  });
}

// `http2ForBench` serves the push-http2 bench; its HTTP/2 connections must live as HTTP/1.1 ones do,
// or the bench measures reconnections.
describe('http: HTTP/2 offered to the push-http2 bench', function () {
  let service: KeylimeService;

  afterEach(async function () {
    await service?.close();
  });

  it('keeps serving an HTTP/2 connection that sends requests past the silent-connection bound', async function () {
    const f = tlsFixture();
    service = createService({
      name: 'verifier',
      apiVersions: serverApiVersionPolicy(),
      tls: { cert: f.server.certPem, key: f.server.keyPem, ca: f.ca.certPem, requestClientCert: true, requireClientCert: 'routes' },
      http2ForBench: true,
      // Bounds well above a loaded host's TLS handshake: the requests must outlive them, not race them.
      timeouts: { headersMs: 1500, requestMs: 3000, keepAliveMs: 1500, idleMs: 3000 },
    });
    service.route({ method: 'GET', url: '/version', versioned: false, handler: ({ reply }) => ok(reply, {}) });
    const { url } = await service.listen({ port: 0 });
    const session = connect(url, { ca: f.ca.certPem });
    session.on('error', () => undefined);
    try {
      // Before, the timer the first request should have cleared was kept for the socket itself and
      // looked up with the request's proxy of it: never found, the connection was cut at `headersMs`.
      const statuses: (number | string)[] = [];
      for (let i = 0; i < 8; i++) {
        statuses.push(await get(session, '/version'));
        await sleep(400);
      }
      expect(statuses).to.deep.equal(Array(8).fill(200));
    } finally {
      session.destroy();
    }
  });
});
