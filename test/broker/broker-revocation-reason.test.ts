import { expect } from 'chai';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { startTestBroker, type TestBroker } from './helpers/broker-fixture.js';

/**
 * A revocation's reason is the administrator's text: a NUL (which PostgreSQL text refuses) or a lone
 * surrogate in it is stored escaped as the visible `\u0000` / `\udXXX`, as the verifier stores such
 * text, not as U+FFFD, which could not be told from a reason that held one.
 */
describe("broker: a revocation's reason holding a NUL or a lone surrogate", function () {
  this.timeout(120_000);
  let opened: OpenedDatabase;
  let broker: TestBroker;

  before(async () => {
    opened = await openTestSchema();
    broker = await startTestBroker({}, opened.database);
  });

  after(async () => {
    await broker?.dispose();
    await opened?.dispose();
  });

  it('revokes the node and stores the reason escaped', async () => {
    await broker.admin.revoke('node-odd-reason', 'disk\u0000swapped \ud800');
    expect(await broker.admin.revocationInForce('node-odd-reason')).to.be.a('string');
    const row = (await opened.database.knex('broker_revocations').select('reason').where({ agent_id: 'node-odd-reason' }).first()) as { reason: string };
    expect(row.reason).to.equal('disk\\u0000swapped \\ud800');
  });
});
