import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { KbsBadReplyError, KbsRefusedError } from '../../lib/kbs-client/kbs-client-errors.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { floodChunked, trickle } from '../helpers/hostile-replies.js';
import { rejectionOf } from '../helpers/rejection.js';

/** A hostile broker: a chunked body with no content-length, a trickle, a refusal with a huge detail. */
describe('kbs client: KbsHttp bounds what a broker can make it read, wait for and print', function () {
  this.timeout(60_000);
  let server: Server;
  let url = '';
  let handler: (res: ServerResponse) => void = () => undefined;
  let http: KbsHttp | undefined;

  beforeEach(async () => {
    server = createServer((_req, res) => handler(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await http?.close().catch(() => undefined);
    http = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('stops reading a chunked reply soon after 8 MiB (KbsBadReplyError), instead of buffering all 128 MiB', async () => {
    const sent = { bytes: 0 };
    handler = (res) => floodChunked(res, 200, 'application/json', sent);
    http = new KbsHttp({ url, timeoutMs: 20_000 });
    const error = await rejectionOf(http.send('GET', '/x'), KbsBadReplyError);
    expect(error.message).to.match(/larger than 8388608 bytes/);
    expect(sent.bytes, 'bytes the broker got to write').to.be.at.most(16 * 1024 * 1024);
  });

  it('gives up when the whole reply has not come within timeoutMs, even if every byte comes before it (ServiceUnreachableError, timeout)', async function () {
    this.timeout(10_000);
    handler = (res) => trickle(res, '[');
    http = new KbsHttp({ url, timeoutMs: 1_000 });
    const started = Date.now();
    const error = await rejectionOf(http.send('GET', '/x'), ServiceUnreachableError);
    expect(error.reason).to.equal('timeout');
    // The trickle never ends (the test's 10 s would); room for a CI host that stalls this process for ~3 s.
    expect(Date.now() - started).to.be.below(7_000);
  });

  it('keeps a refusal\'s type and detail printable and short: no terminal escapes, at most 1,024 characters of 2 MiB', async () => {
    const detail = `\u001b[2J\u001b]0;owned\u0007denied\r\nforged line\u2028second\u2029\u202e${'x'.repeat(2 * 1024 * 1024)}`;
    handler = (res) => {
      res.writeHead(403, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ type: 'https://x/errors/Policy\u001b[31mDeny', detail }));
    };
    http = new KbsHttp({ url });
    const refused = await rejectionOf(http.send('GET', '/x'), KbsRefusedError);
    for (const text of [refused.detail, refused.kbsType, refused.message]) {
      expect(text).to.not.match(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202e]/);
    }
    expect(refused.detail).to.match(/^ \[2J \]0;owned denied  forged line second  x+…$/);
    expect(refused.detail.length).to.be.at.most(1025);
    expect(refused.kbsType).to.equal('Policy [31mDeny');
    expect(refused.remoteHttpStatus).to.equal(403);
  });
});
