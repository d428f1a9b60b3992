import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { startVerifier } from '../../lib/verifier/verifier-server.js';
import { PUSH_SETTINGS, usePushVerifier } from './helpers/push-verifier.js';

/**
 * The push silence timeout itself, at PUSH_SETTINGS' 3 s: the agents here are meant to be timed out, so
 * a sweep that fires early on a slow host changes nothing these tests assert.
 */
describe('push model: liveness, an agent that stops sending is timed out (issue 13)', function () {
  this.timeout(60_000);
  const push = usePushVerifier();

  it('is timed out (FAILED, not pending) when it stops sending, announced as comm_error, and recovers when enrolled again', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    await node.agent.attestOnce();
    await new Promise((resolve) => setTimeout(resolve, 3200));
    await push.verifier.push.silenceSweep.tick();
    const failed = await push.stored(node.uuid);
    expect(failed.state.operationalState).to.equal(OperationalState.FAILED);
    expect(failed.state.lastEventId).to.equal('internal.verifier.not_reachable');
    expect(await push.announcement(node.uuid)).to.deep.equal({ type: 'comm_error', event_id: 'internal.verifier.not_reachable' });
    expect((await push.call('GET', `/v2.5/agents/${node.uuid}`)).body['results']['attestation_status']).to.equal('FAIL');
    // Still failed after a pass: a push agent stays failed until it is enrolled again.
    await node.agent.attestOnce();
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.FAILED);
    await push.reenrol(node);
    await node.agent.attestOnce().catch(() => node.agent.attestOnce());
    const recovered = await push.stored(node.uuid);
    expect(recovered.state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect(recovered.state.attestationCount).to.equal(1);
  });

  it('two verifier processes sweeping the same silent agents at once fail each once: one FAIL row and one announcement per agent', async function () {
    const second = await startVerifier(
      { dataDir: push.dir, ...PUSH_SETTINGS, instanceId: 'second-sweeper', revocationWebhooks: [push.webhookUrl()] },
      { database: push.opened.database, inProcessForTests: true },
    );
    try {
      const silent = await Promise.all([1, 2, 3].map(() => push.bootNode()));
      for (const node of silent) {
        await push.enrol(node);
        await node.agent.attestOnce();
      }
      await new Promise((resolve) => setTimeout(resolve, 3200));
      await Promise.all([push.verifier.push.silenceSweep.tick(), second.push.silenceSweep.tick()]);
      for (const node of silent) {
        expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.FAILED);
        expect((await push.history(node.uuid)).map((r) => r.outcome), node.uuid).to.deep.equal(['pass', 'fail']);
        expect(await push.announcement(node.uuid)).to.deep.equal({ type: 'comm_error', event_id: 'internal.verifier.not_reachable' });
      }
    } finally {
      await second.close();
    }
  });
});
