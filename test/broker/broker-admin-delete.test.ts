import { expect } from 'chai';
import { forEachDatabase } from '../helpers/databases.js';
import { refusal, startTestBroker, type TestBroker } from './helpers/broker-fixture.js';

const RESOURCE = { repository: 'node', type: 'disk-key', tag: 'admin-delete' };
const AGENT = 'd2b5b3a4-5f43-4c53-9d0b-2a7d3f1e0c11';

/**
 * The admin DELETE routes answer 204 when they deleted something and 404 when there was nothing, on
 * PostgreSQL and on the embedded PGlite of a zero-config broker (whose driver reports a delete's
 * count in another shape than pg's).
 */
forEachDatabase('broker: admin deletes', (fixture) => {
  let broker: TestBroker;

  before(async function () {
    broker = await startTestBroker({}, fixture.database);
  });

  after(async function () {
    await broker?.dispose();
  });

  it('a stored resource is deleted with 204, then is 404', async function () {
    await broker.admin.putResource(RESOURCE, new Uint8Array([1, 2, 3]), { agents: [AGENT] });
    await broker.admin.deleteResource(RESOURCE);
    expect(await fixture.database.knex('broker_resources').where(RESOURCE).select('tag')).to.deep.equal([]);
    const second = await refusal(broker.admin.deleteResource(RESOURCE));
    expect([second.remoteHttpStatus, second.kbsType]).to.deep.equal([404, 'InvalidRequestPath']);
  });

  it('a stored node is deleted with 204, then is 404', async function () {
    await broker.admin.putNode(AGENT, { groups: ['rack4'] });
    await broker.admin.deleteNode(AGENT);
    expect(await fixture.database.knex('broker_nodes').where({ agent_id: AGENT }).select('agent_id')).to.deep.equal([]);
    const second = await refusal(broker.admin.deleteNode(AGENT));
    expect(second.remoteHttpStatus).to.equal(404);
  });
});
