import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { BrokerAdminClient } from '../../lib/broker/broker-admin-client.js';
import { ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { KbsBadReplyError } from '../../lib/kbs-client/kbs-client-errors.js';
import { loadOrCreateClientTls, loadOrCreateServiceTls, type ServiceTls } from '../../lib/pki/service-tls.js';
import { floodChunked, trickle } from '../helpers/hostile-replies.js';
import { rejectionOf } from '../helpers/rejection.js';

/** A hostile broker behind mTLS: a refusal with a 128 MiB chunked body, an answer that trickles. */
describe('broker admin client: bounds what a broker can make it read and wait for', function () {
  this.timeout(60_000);
  let dir: string;
  let server: Server;
  let client: BrokerAdminClient | undefined;
  let url = '';
  let clientTls: ServiceTls;
  let handler: (res: ServerResponse) => void = () => undefined;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-admin-bounds-'));
    const serverTls = await loadOrCreateServiceTls({ dataDir: dir, serviceName: 'broker' });
    clientTls = await loadOrCreateClientTls({ dataDir: dir, serviceName: 'broker-admin' });
    server = createServer({ cert: serverTls.cert, key: serverTls.key }, (_req, res) => handler(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await client?.close().catch(() => undefined);
    client = undefined;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  function open(timeoutMs?: number): BrokerAdminClient {
    client = new BrokerAdminClient({ url, ca: clientTls.ca, cert: clientTls.cert, key: clientTls.key, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    return client;
  }

  it('stops reading a refusal whose chunked body runs to 128 MiB soon after 1 MiB (KbsBadReplyError)', async () => {
    const sent = { bytes: 0 };
    handler = (res) => floodChunked(res, 400, 'application/problem+json', sent);
    const error = await rejectionOf(open().putNode('node-1', { groups: ['rack4'] }), KbsBadReplyError);
    expect(error.message).to.match(/larger than 1048576 bytes/);
    expect(sent.bytes, 'bytes the broker got to write').to.be.at.most(16 * 1024 * 1024);
  });

  it('gives up when the whole answer has not come within timeoutMs, even if a byte comes every 300 ms (ServiceUnreachableError, timeout)', async function () {
    this.timeout(10_000);
    handler = (res) => trickle(res, '{');
    const started = Date.now();
    const error = await rejectionOf(open(1_000).revocationInForce('node-1'), ServiceUnreachableError);
    expect(error.reason).to.equal('timeout');
    // The trickle never ends (the test's 10 s would); room for a CI host that stalls this process for ~3 s.
    expect(Date.now() - started).to.be.below(7_000);
  });
});
