import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { BrokerAdminClient } from '../../lib/broker/broker-admin-client.js';
import { startBroker, type RunningBroker } from '../../lib/broker/broker-server.js';
import { KbsRefusedError } from '../../lib/kbs-client/kbs-client-errors.js';
import { loadOrCreateClientTls } from '../../lib/pki/service-tls.js';
import { forEachDatabase } from '../helpers/databases.js';

const RESOURCE = { repository: 'node', type: 'disk-key', tag: 'admin-delete' };
const AGENT = 'd2b5b3a4-5f43-4c53-9d0b-2a7d3f1e0c11';

async function refusal(call: Promise<unknown>): Promise<KbsRefusedError> {
  try {
    await call;
  } catch (error) {
    expect(error).to.be.instanceOf(KbsRefusedError);
    return error as KbsRefusedError;
  }
  expect.fail('the call should have been refused');
}

/**
 * The admin DELETE routes answer 204 when they deleted something and 404 when there was nothing, on
 * PostgreSQL and on the embedded PGlite of a zero-config broker (whose driver reports a delete's
 * count in another shape than pg's).
 */
forEachDatabase('broker: admin deletes', (fixture) => {
  let dataDir: string;
  let running: RunningBroker;
  let admin: BrokerAdminClient;

  before(async function () {
    dataDir = await mkdtemp(path.join(tmpdir(), 'ironlime-broker-admin-delete-'));
    running = await startBroker({ port: 0, dataDir }, { database: fixture.database });
    const tls = await loadOrCreateClientTls({ dataDir, serviceName: 'broker-admin' });
    admin = new BrokerAdminClient({ url: running.url, ca: running.caCert, cert: tls.cert, key: tls.key });
  });

  after(async function () {
    await admin?.close();
    await running?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a stored resource is deleted with 204, then is 404', async function () {
    await admin.putResource(RESOURCE, new Uint8Array([1, 2, 3]), { agents: [AGENT] });
    await admin.deleteResource(RESOURCE);
    expect(await fixture.database.knex('broker_resources').where(RESOURCE).select('tag')).to.deep.equal([]);
    const second = await refusal(admin.deleteResource(RESOURCE));
    expect([second.remoteHttpStatus, second.kbsType]).to.deep.equal([404, 'InvalidRequestPath']);
  });

  it('a stored node is deleted with 204, then is 404', async function () {
    await admin.putNode(AGENT, { groups: ['rack4'] });
    await admin.deleteNode(AGENT);
    expect(await fixture.database.knex('broker_nodes').where({ agent_id: AGENT }).select('agent_id')).to.deep.equal([]);
    const second = await refusal(admin.deleteNode(AGENT));
    expect(second.remoteHttpStatus).to.equal(404);
  });
});
