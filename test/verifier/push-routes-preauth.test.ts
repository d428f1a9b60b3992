import { connect } from 'node:tls';
import { expect } from 'chai';
import { EVIDENCE_BODY_LIMIT } from '../../lib/http/keylime-service.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { numberArrayBody, sendChunkedUntilClosed, timedHttpsCall } from '../helpers/timed-https-call.js';

/** Without the fix the 32 MiB body below was parsed first: a 403 after ~34 s, the event loop blocked ~32 s. */
const MAX_STALL_MS = 1000;

describe('push routes: a request without a valid token is refused before its body is read (H-1)', function () {
  this.timeout(120_000);
  const suite = verifierPerSuite('ironlime-push-preauth-');

  const patchEvidence = (headers: Record<string, string>, body: string) =>
    timedHttpsCall(suite.verifier.url, suite.verifier.caCert, 'PATCH', '/v3.0/agents/nobody/attestations/0', { 'content-type': 'application/vnd.api+json', ...headers }, body);

  it('answers 403 to a 32 MiB evidence body without a token, without parsing it or stalling the event loop', async () => {
    const reply = await patchEvidence({}, numberArrayBody(EVIDENCE_BODY_LIMIT - 16));
    expect(reply.status).to.equal(403);
    expect(JSON.parse(reply.body)).to.deep.equal({ errors: [{ status: '403', code: 'unauthorized', detail: 'a session token is required (Authorization: Bearer)' }] });
    expect(reply.worstStallMs).to.be.below(MAX_STALL_MS);
  });

  it('answers 401 to a body with a token of no session, without parsing it', async () => {
    const reply = await patchEvidence({ authorization: 'Bearer 00000000-0000-4000-8000-000000000000.secret' }, numberArrayBody(EVIDENCE_BODY_LIMIT - 16));
    expect(reply.status).to.equal(401);
    expect(reply.worstStallMs).to.be.below(MAX_STALL_MS);
  });

  it('closes the connection after refusing a request whose declared body is over the limit, without waiting for it', async () => {
    const url = new URL(suite.verifier.url);
    const socket = connect({ host: url.hostname, port: Number(url.port), ca: suite.verifier.caCert, servername: 'localhost' });
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(`PATCH /v3.0/agents/nobody/attestations/0 HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${EVIDENCE_BODY_LIMIT + 1}\r\n\r\n[0,`);
    await closed;
    const head = Buffer.concat(received).toString('latin1');
    expect(head).to.match(/^HTTP\/1\.1 403 /);
    expect(head.toLowerCase()).to.include('connection: close');
  });

  it('closes the connection after refusing a chunked body (no declared length) rather than discarding it without bound', async () => {
    // Twice the route's limit, sent after the refusal: before, all of it was read and thrown away.
    const head = 'PATCH /v3.0/agents/nobody/attestations/0 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n';
    const { reply, closedByServer } = await sendChunkedUntilClosed(suite.verifier.url, suite.verifier.caCert, head, 2 * EVIDENCE_BODY_LIMIT);
    expect(reply).to.match(/^HTTP\/1\.1 403 /);
    expect(closedByServer, 'closed by the server before twice the limit was sent').to.equal(true);
  });

  it('closes the connection after an admin route refuses a chunked body on arrival (no client certificate)', async () => {
    const head = 'POST /v2.3/mbpolicies/chunked HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
    const { reply, closedByServer, sent } = await sendChunkedUntilClosed(suite.verifier.url, suite.verifier.caCert, head, 64 * 1024 * 1024);
    expect(reply).to.match(/^HTTP\/1\.1 403 /);
    expect(closedByServer, 'closed by the server').to.equal(true);
    expect(sent, 'bytes sent before the close').to.be.below(16 * 1024 * 1024);
  });
});
