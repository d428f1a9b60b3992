import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import { EVIDENCE_BODY_LIMIT } from '../../lib/http/keylime-service.js';
import { JSON_API, usePushVerifier } from './helpers/push-verifier.js';

/**
 * The push evidence PATCH takes up to 32 MiB per body (a whole IMA list), and judging one costs seconds
 * and several times its size in heap: a few agents sending such bodies at once could run the verifier
 * out of memory. Bodies over 256 KiB are held at most `pushEvidenceBodyBudget` bytes at once, by their
 * declared length, counted once the token is checked; past it 503 with Retry-After, before the body is
 * read. An agent's usual evidence (tens of KB) is never counted.
 */
describe('push evidence PATCH: bodies in flight are bounded across agents (real PostgreSQL)', function () {
  this.timeout(60_000);
  const push = usePushVerifier({ pushEvidenceBodyBudget: EVIDENCE_BODY_LIMIT });
  const held: Socket[] = [];
  let path: string;
  let authorization: string;

  before(async function () {
    ({ path, authorization } = await push.evidencePathWithToken());
  });

  after(function () {
    for (const socket of held) socket.destroy();
  });

  /** Starts an authenticated PATCH declaring the largest body, sends one MiB of it, and holds the connection. */
  async function holdLargestBody(): Promise<void> {
    const url = new URL(push.url);
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    socket.on('error', () => undefined);
    held.push(socket);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(`PATCH ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${JSON_API}\r\nAuthorization: ${authorization}\r\nContent-Length: ${EVIDENCE_BODY_LIMIT}\r\n\r\n`);
    socket.write(Buffer.alloc(1024 * 1024, 0x20));
    await new Promise((resolve) => setTimeout(resolve, 300));
  }

  /** An authenticated PATCH of a body of `bytes` bytes (blanks, then `{}`: read, then refused): its status and Retry-After. */
  function patch(bytes: number): Promise<{ status: number; retryAfter: string | undefined }> {
    return new Promise((resolve, reject) => {
      const call = httpRequest(`${push.url}${path}`, { method: 'PATCH', headers: { 'content-type': JSON_API, authorization }, agent: false }, (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode ?? 0, retryAfter: response.headers['retry-after'] }));
      });
      call.on('error', reject);
      call.end(`${' '.repeat(bytes - 2)}{}`);
    });
  }

  it('answers 503 with Retry-After to a large body while the budget is held, never to a small one, and serves again once released', async function () {
    expect((await patch(1024 * 1024)).status).to.not.equal(503);
    await holdLargestBody();
    expect(await patch(1024 * 1024)).to.deep.equal({ status: 503, retryAfter: '1' });
    expect((await patch(64 * 1024)).status, 'a usual evidence body is never counted').to.not.equal(503);
    held.pop()?.destroy();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await patch(1024 * 1024)).status).to.not.equal(503);
  });
});
