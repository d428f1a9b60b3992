import { expect } from 'chai';
import { startTestFleet, type TestFleet } from '../dashboard/fleet-fixture.js';

/**
 * An admin request refused for its agent id is recorded (best effort, docs/dashboard.md) whatever the
 * id holds: a NUL, which PostgreSQL text cannot hold, in the path made its record's stream unstorable,
 * so the refused attempt of an authenticated caller went unrecorded ("admin action not audited").
 */
describe('audit: an admin request with a hostile agent id is still recorded', function () {
  this.timeout(120_000);
  let fleet: TestFleet;

  before(async function () {
    fleet = await startTestFleet(1, 0.5);
  });

  after(async function () {
    await fleet?.close();
  });

  it('a stop of agent id "\\0x" is refused and recorded in the fleet stream, its id escaped in details', async function () {
    const operator = await fleet.token('operator', 'default');
    const reply = await fleet.call('PUT', '/v2.3/agents/%00x/stop', { authorization: `Bearer ${operator}` });
    expect(reply.status).to.be.within(400, 599);
    const rows = (await fleet.admin.withSchema(fleet.schema).table('audit_records').where({ action: 'PUT /agents/:agent_id/stop' }).select('stream', 'agent_id', 'details')) as {
      stream: string;
      agent_id: string | null;
      details: string;
    }[];
    expect(rows).to.have.length(1);
    expect(rows[0]?.stream).to.equal('fleet');
    expect(rows[0]?.agent_id).to.equal(null);
    // Escaped as every stored text (storableText): a raw NUL in details made the dashboard's jsonb reads fail.
    expect(JSON.parse(rows[0]?.details ?? '{}').params).to.deep.equal({ agent_id: '\\u0000x' });
  });
});
