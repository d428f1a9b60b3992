import { expect } from 'chai';
import { usePushVerifier } from './helpers/push-verifier.js';

/** A passing verdict extends the agent's token after it is stored; that write failing turned the 202 into a 500. */
describe('push model: a token extension that fails after a stored pass', function () {
  this.timeout(60_000);
  const push = usePushVerifier();

  it('still answers 202: the verdict is stored and the agent attests again', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    const { token, evidence } = await push.issuedEvidence(node);
    const sessions = push.verifier.push.sessions;
    const extend = sessions.extend.bind(sessions);
    sessions.extend = () => Promise.reject(new Error('the database refused the token extension'));
    try {
      const accepted = await push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/0`, evidence, token);
      expect(accepted.status, JSON.stringify(accepted.body)).to.equal(202);
    } finally {
      sessions.extend = extend;
    }
    expect((await push.stored(node.uuid)).state.attestationCount).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await node.agent.attestOnce()).to.equal(1);
    expect((await push.stored(node.uuid)).state.attestationCount).to.equal(2);
  });
});
