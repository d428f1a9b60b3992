import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { usePushVerifier } from './helpers/push-verifier.js';

/**
 * An enrolment stored before weak AKs were refused at enrolment (or written by another tool) holds a
 * 1024-bit RSA AK. A push agent's phase 1 loads it: the agent must be failed then, not refused phase 1
 * after phase 1 (400) while its last PASS stands until its silence timeout.
 */
describe('push model: an enrolment stored with a weak AK is failed at phase 1 (real PostgreSQL)', function () {
  this.timeout(60_000);
  const push = usePushVerifier({ pushTimeout: 60 });

  it('stores a FAIL (internal.verifier.exception) naming the AK, once, and refuses the attestation', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    expect(await node.agent.attestOnce()).to.equal(1);
    const token = await node.agent.openSession();
    await push.opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).update({ ak_tpm: new FakeAgent({ akRsaBits: 1024 }).akTpm });
    await new Promise((resolve) => setTimeout(resolve, 1050));
    for (const attempt of [1, 2]) {
      const created = await push.capabilities(node, token);
      expect(created.status, `attempt ${attempt}`).to.equal(400);
      expect(JSON.stringify(created.body)).to.contain('the AK is a 1024-bit RSA key');
    }
    const stored = await push.stored(node.uuid);
    expect(stored.state.operationalState).to.equal(OperationalState.FAILED);
    expect(stored.state.lastEventId).to.equal('internal.verifier.exception');
    const history = await push.history(node.uuid);
    expect(history.map((row) => row.outcome)).to.deep.equal(['pass', 'fail']);
    expect(JSON.stringify(history[1])).to.match(/the AK is a 1024-bit RSA key/);
    expect(await push.announcement(node.uuid)).to.deep.equal({ type: 'comm_error', event_id: 'internal.verifier.exception' });
  });
});
