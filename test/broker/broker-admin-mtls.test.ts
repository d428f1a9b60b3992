import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { BrokerAdminClient } from '../../lib/broker/broker-admin-client.js';
import { loadOrCreateClientTls } from '../../lib/pki/service-tls.js';
import { refusal, startTestBroker, type TestBroker } from './helpers/broker-fixture.js';

const RESOURCE = { repository: 'node', type: 'disk-key', tag: 'admin-mtls' };

/**
 * The admin routes accept only client certificates issued by the broker's own CA: a certificate with
 * the same name from another ironlime CA (another data folder) is refused with 401 AdminAuth, and the
 * refused request changes nothing.
 */
describe('broker: admin routes refuse a client certificate from another CA', function () {
  this.timeout(60_000);
  let broker: TestBroker;
  let otherDir: string;
  let intruder: BrokerAdminClient;

  before(async function () {
    broker = await startTestBroker();
    otherDir = await mkdtemp(path.join(tmpdir(), 'ironlime-other-ca-'));
    const other = await loadOrCreateClientTls({ dataDir: otherDir, serviceName: 'broker-admin' });
    expect(other.ca, 'a CA of its own').to.not.equal(broker.running.caCert);
    intruder = new BrokerAdminClient({ url: broker.running.url, ca: broker.running.caCert, cert: other.cert, key: other.key });
  });

  after(async function () {
    await intruder?.close();
    await broker?.dispose();
    await rm(otherDir, { recursive: true, force: true });
  });

  it('PUT and DELETE of a resource, a node and a revocation are 401 AdminAuth', async function () {
    await broker.admin.putResource(RESOURCE, new Uint8Array([1, 2, 3]), { agents: ['node-1'] });
    const attempts: [string, () => Promise<void>][] = [
      ['put resource', () => intruder.putResource(RESOURCE, new Uint8Array([6, 6, 6]), { agents: ['intruder'] })],
      ['delete resource', () => intruder.deleteResource(RESOURCE)],
      ['put node', () => intruder.putNode('intruder', { groups: ['rack4'] })],
      ['revoke', () => intruder.revoke('node-1', 'spoofed')],
      ['reinstate', () => intruder.reinstate('node-1')],
    ];
    for (const [what, attempt] of attempts) {
      const error = await refusal(attempt());
      expect([what, error.remoteHttpStatus, error.kbsType], error.message).to.deep.equal([what, 401, 'AdminAuth']);
    }
  });

  it("the refused requests changed nothing: the broker's own admin still finds the resource and no intruder node", async function () {
    await broker.admin.deleteResource(RESOURCE);
    const gone = await refusal(broker.admin.deleteResource(RESOURCE));
    expect(gone.remoteHttpStatus, 'deleted once, so it was still there').to.equal(404);
    const noNode = await refusal(broker.admin.deleteNode('intruder'));
    expect(noNode.remoteHttpStatus, 'the intruder node was never stored').to.equal(404);
  });
});
