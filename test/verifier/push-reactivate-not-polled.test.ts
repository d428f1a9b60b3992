import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { usePushVerifier } from './helpers/push-verifier.js';

/**
 * An operator's change to a push agent wakes the pull loop of the process that handles it, as for any
 * agent. The pull loop must leave a push agent alone: loaded as a pull agent it has no address to poll,
 * and was failed for it (`internal.verifier.exception`) when reactivated or when its policy was replaced.
 */
describe('push model: the pull loop leaves a push agent alone when an operator changes it', function () {
  this.timeout(60_000);
  const push = usePushVerifier({ pushTimeout: 60 });

  it('a reactivated push agent is not failed for having no address to poll, and keeps passing', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    await node.agent.attestOnce();
    expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass']);
    expect((await push.call('PUT', `/v2.5/agents/${node.uuid}/reactivate`)).status).to.equal(200);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const history = await push.history(node.uuid);
    expect(history.map((row) => row.outcome), JSON.stringify(history)).to.deep.equal(['pass']);
    expect((await push.stored(node.uuid)).state.operationalState).to.not.equal(OperationalState.FAILED);
    await node.agent.attestOnce();
    expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass', 'pass']);
  });
});
