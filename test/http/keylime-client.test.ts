import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IsInt, IsString } from 'class-validator';
import { expect } from 'chai';
import { InvalidConfig } from '../../interfaces/errors.js';
import { BadRemoteReplyError, KeylimeHttpError, ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { createKeylimeClient } from '../../lib/http/keylime-client.js';

class VersionResults {
  @IsString()
  current_version!: string;
}

class CountResults {
  @IsInt()
  count!: number;
}

/** A raw HTTP server answering each path with a fixed status and body (or hanging), to play a misbehaving peer. */
const ROUTES: Record<string, { status: number; body?: string; hang?: boolean }> = {
  '/version': { status: 200, body: JSON.stringify({ code: 200, status: 'Success', results: { current_version: '2.6', extra: 1 } }) },
  '/missing': { status: 404, body: JSON.stringify({ code: 404, status: 'agent id not found', results: {} }) },
  '/proxy-error': { status: 502, body: '<html>Bad Gateway</html>' },
  '/html': { status: 200, body: '<html>hello</html>' },
  '/big': { status: 200, body: JSON.stringify({ code: 200, status: 'Success', results: { blob: 'x'.repeat(4096) } }) },
  '/deleted': { status: 204 },
  '/slow': { status: 200, hang: true },
};

describe('http: Keylime client', () => {
  let server: Server;
  let baseUrl: string;
  const seen: { method: string; url: string; type: string | undefined; body: string }[] = [];
  /** The next `/drop-once` request has its kept-alive connection closed instead of an answer. */
  let dropOnce = false;

  before(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      request.on('end', () => {
        seen.push({ method: request.method ?? '', url: request.url ?? '', type: request.headers['content-type'], body });
        if (request.url === '/drop-once' && dropOnce) {
          dropOnce = false;
          request.socket.destroy();
          return;
        }
        const route = ROUTES[(request.url ?? '').split('?')[0] ?? ''] ?? { status: 200, body: JSON.stringify({ code: 200, status: 'Success', results: {} }) };
        if (route.hang === true) {
          return;
        }
        response.writeHead(route.status, { 'content-type': 'application/json' });
        response.end(route.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('returns the envelope and validates results with a DTO, dropping unknown fields', async () => {
    const client = createKeylimeClient({ baseUrl });
    const untyped = await client.get('/version');
    expect(untyped.results).to.deep.equal({ current_version: '2.6', extra: 1 });
    const typed = await client.get('/version', { results: VersionResults });
    expect(typed.results).to.be.instanceOf(VersionResults);
    expect(typed.results.current_version).to.equal('2.6');
    expect(typed.results).to.not.have.property('extra');
    const error = await client.get('/version', { results: CountResults }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(BadRemoteReplyError);
    expect((error as BadRemoteReplyError).message).to.equal(`${baseUrl}/version: bad reply: results.count: must be an integer number`);
    client.close();
  });

  it('sends JSON bodies and URL-encoded queries', async () => {
    const client = createKeylimeClient({ baseUrl });
    await client.post('/v2.6/agents/a1', { ak_tpm: 'QQ==' });
    await client.get('/v2.6/quotes/integrity', { query: { nonce: 'abc', mask: '0x408400', partial: 0 } });
    await client.delete('/v2.6/agents/a1');
    expect(seen.slice(-3)).to.deep.equal([
      { method: 'POST', url: '/v2.6/agents/a1', type: 'application/json', body: '{"ak_tpm":"QQ=="}' },
      { method: 'GET', url: '/v2.6/quotes/integrity?nonce=abc&mask=0x408400&partial=0', type: undefined, body: '' },
      { method: 'DELETE', url: '/v2.6/agents/a1', type: undefined, body: '' },
    ]);
    expect(await client.put('/deleted', {})).to.deep.equal({ code: 204, status: 'No Content', results: {} });
    client.close();
  });

  it('turns non-2xx replies into KeylimeHttpError with status, text and results', async () => {
    const client = createKeylimeClient({ baseUrl });
    const missing = (await client.get('/missing').catch((e: unknown) => e)) as KeylimeHttpError;
    expect(missing).to.be.instanceOf(KeylimeHttpError);
    expect(missing).to.deep.include({ code: 'ERR_REMOTE_HTTP_STATUS', httpStatus: 404, status: 'agent id not found', results: {} });
    expect(missing.message).to.equal(`${baseUrl}/missing: 404 agent id not found`);
    const proxy = (await client.get('/proxy-error').catch((e: unknown) => e)) as KeylimeHttpError;
    expect(proxy).to.deep.include({ httpStatus: 502, status: 'Bad Gateway', results: {} });
    client.close();
  });

  it('refuses replies that are not envelopes or are too large', async () => {
    const client = createKeylimeClient({ baseUrl, maxResponseBytes: 2048 });
    const html = await client.get('/html').catch((e: unknown) => e);
    expect(html).to.be.instanceOf(BadRemoteReplyError);
    expect((html as Error).message).to.equal(`${baseUrl}/html: bad reply: not a Keylime JSON envelope {code, status, results}`);
    const big = await client.get('/big').catch((e: unknown) => e);
    expect(big).to.be.instanceOf(BadRemoteReplyError);
    expect(big).to.deep.include({ code: 'ERR_BAD_REMOTE_REPLY', message: `${baseUrl}/big: bad reply: reply larger than the configured maximum` });
    client.close();
  });

  it('maps a timeout and a refused connection to ServiceUnreachableError', async () => {
    const slow = createKeylimeClient({ baseUrl, timeoutMs: 200 });
    const timeout = await slow.get('/slow').catch((e: unknown) => e);
    expect(timeout).to.be.instanceOf(ServiceUnreachableError);
    expect(timeout).to.deep.include({ code: 'ERR_SERVICE_UNREACHABLE', reason: 'timeout', url: `${baseUrl}/slow` });
    slow.close();
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await createKeylimeClient({ baseUrl: `http://127.0.0.1:${port}` }).get('/version').catch((e: unknown) => e);
    expect(refused).to.be.instanceOf(ServiceUnreachableError);
    expect(refused).to.deep.include({ reason: 'refused' });
    expect((refused as Error).message).to.match(new RegExp(`^http://127\\.0\\.0\\.1:${port}/version: unreachable: ECONNREFUSED`));
  });

  it('sends a GET once more when the server closed the kept-alive connection it went out on, but not a POST', async () => {
    const client = createKeylimeClient({ baseUrl });
    await client.get('/version');
    dropOnce = true;
    expect((await client.get('/drop-once')).code).to.equal(200);
    expect(seen.filter((request) => request.url === '/drop-once')).to.have.length(2);
    await client.get('/version');
    dropOnce = true;
    const posted = await client.post('/drop-once', {}).catch((error: unknown) => error);
    expect(posted).to.be.instanceOf(ServiceUnreachableError);
    expect(seen.filter((request) => request.url === '/drop-once')).to.have.length(3);
    client.close();
  });

  it('close() ends a request in flight on a kept-alive connection without sending it again, and refuses later requests', async () => {
    const client = createKeylimeClient({ baseUrl, timeoutMs: 30_000 });
    await client.get('/version');
    const before = seen.filter((request) => request.url === '/slow').length;
    const inFlight = client.get('/slow').catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 100));
    client.close();
    const started = Date.now();
    expect(await inFlight).to.be.instanceOf(ServiceUnreachableError);
    // Sent again after close(), it would hang on '/slow' until the 30 s deadline.
    expect(Date.now() - started).to.be.lessThan(10_000);
    const later = await client.get('/version').catch((error: unknown) => error);
    expect(later).to.be.instanceOf(ServiceUnreachableError);
    expect((later as Error).message).to.equal(`${baseUrl}/version: unreachable: the client was closed`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen.filter((request) => request.url === '/slow')).to.have.length(before + 1);
  });

  it('refuses unusable options', () => {
    expect(() => createKeylimeClient({ baseUrl: 'ftp://x' })).to.throw(InvalidConfig, 'invalid config: baseUrl: must be http:// or https://');
    expect(() => createKeylimeClient({ baseUrl: 'https://x', tls: { ca: 'a', pinnedServerCert: 'b' } })).to.throw(
      InvalidConfig,
      'invalid config: tls: give either ca or pinnedServerCert, not both',
    );
    expect(() => createKeylimeClient({ baseUrl: 'https://x', tls: { pinnedServerCert: 'not pem' } })).to.throw(
      InvalidConfig,
      'invalid config: tls.pinnedServerCert: is not a PEM certificate',
    );
    expect(() => createKeylimeClient({ baseUrl: 'https://x', tls: { cert: 'a' } })).to.throw(InvalidConfig, 'invalid config: tls: cert and key go together');
    expect(() => createKeylimeClient({ baseUrl: 'http://x', timeoutMs: 0 })).to.throw(InvalidConfig, 'invalid config: timeoutMs: must be an integer from 1 to 3600000');
  });
});
