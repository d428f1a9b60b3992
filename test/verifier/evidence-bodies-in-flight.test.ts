import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { expect } from 'chai';
import { EVIDENCE_BODY_LIMIT } from '../../lib/http/keylime-service.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { sendChunkedUntilClosed, timedHttpsCall } from '../helpers/timed-https-call.js';

/**
 * M-2: `POST /verify/evidence` is public; each connection could hold up to 32 MiB of an unfinished body
 * for `requestMs` (8 connections: 248 MiB). The route holds at most `evidenceBodyBudget` bytes of
 * declared bodies; past it a request is answered 503 with Retry-After before its body is read.
 */
describe('POST /verify/evidence: bodies in flight are bounded (M-2)', function () {
  this.timeout(60_000);
  let dir: string;
  let opened: OpenedDatabase;
  let verifier: RunningVerifier;
  const held: TLSSocket[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-evidence-budget-'));
    opened = await openTestSchema();
    verifier = await startVerifier({ dataDir: dir, port: 0, quoteInterval: 3600, evidenceBodyBudget: EVIDENCE_BODY_LIMIT }, { database: opened.database });
  });

  after(async () => {
    for (const socket of held) socket.destroy();
    await verifier?.close();
    await opened?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts a request declaring a 32 MiB body and sends one MiB of it, then holds the connection. */
  async function holdLargeBody(): Promise<void> {
    const url = new URL(verifier.url);
    const socket = connect({ host: url.hostname, port: Number(url.port), ca: verifier.caCert, servername: 'localhost' });
    held.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    socket.write(`POST /v2.4/verify/evidence HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${EVIDENCE_BODY_LIMIT}\r\n\r\n`);
    socket.write(Buffer.alloc(1024 * 1024, 0x20));
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  const post = () => timedHttpsCall(verifier.url, verifier.caCert, 'POST', '/v2.4/verify/evidence', { 'content-type': 'application/json' }, '{}');

  it('answers 503 with Retry-After while the budget is held, and serves again once it is released', async () => {
    expect((await post()).status).to.equal(400);
    await holdLargeBody();
    const busy = await post();
    expect(busy.status).to.equal(503);
    expect(busy.headers['retry-after']).to.equal('1');
    expect(JSON.parse(busy.body)).to.deep.equal({ code: 503, status: 'Service Unavailable', results: {} });
    held.pop()?.destroy();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await post()).status).to.equal(400);
  });

  it('closes the connection of a chunked body it refuses busy rather than discarding it without bound', async () => {
    await holdLargeBody();
    const head = 'POST /v2.4/verify/evidence HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n';
    const { reply, closedByServer } = await sendChunkedUntilClosed(verifier.url, verifier.caCert, head, 2 * EVIDENCE_BODY_LIMIT);
    expect(reply).to.match(/^HTTP\/1\.1 503 /);
    expect(closedByServer, 'closed by the server before twice the limit was sent').to.equal(true);
  });
});
