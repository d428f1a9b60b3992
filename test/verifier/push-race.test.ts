import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { startVerifier } from '../../lib/verifier/verifier-server.js';
import { backendPid, waitForLockWaiters } from '../helpers/lock-waits.js';
import { PUSH_SETTINGS, requested, usePushVerifier } from './helpers/push-verifier.js';

describe('push model: a verdict and another process\'s silence FAIL in flight at once (two verifier instances, one PostgreSQL)', function () {
  this.timeout(60_000);
  const push = usePushVerifier();

  it('evidence taken before the FAIL committed, its verdict after: the FAIL stands, the evidence is judged again from the failed row, and the agent attests on', async function () {
    // The second instance shares the first's data directory, hence its owner name, as two processes
    // on one machine do; its own silence timeout is long, so only the first one's sweep fails the agent.
    const second = await startVerifier({ dataDir: push.dir, ...PUSH_SETTINGS, pushTimeout: 600 }, { database: push.opened.database, inProcessForTests: true });
    try {
      const node = await push.bootNode();
      await push.enrol(node);
      expect(await node.agent.attestOnce()).to.equal(1);
      const token = await node.agent.openSession();
      const knex = push.opened.database.knex;
      const attestations = `/v3.0/agents/${node.uuid}/attestations`;
      let patching: ReturnType<typeof push.call> | undefined;
      await knex.transaction(async (trx) => {
        // Holding the agent's row: the first instance's sweep, once the agent is silent for its
        // timeout, reads the row and queues its FAIL behind this lock.
        await trx('verifier_agents').where({ agent_id: node.uuid }).forUpdate().select('agent_id');
        const holder = await backendPid(trx);
        await waitForLockWaiters(knex, holder, 1);
        // Meanwhile the agent talks to the second instance: phase 1 reads the row as it was, phase 2
        // judges from it and takes the evidence; its verdict queues behind the FAIL.
        const created = await push.call('POST', attestations, await node.agent.capabilities(), token, second);
        expect(created.status).to.equal(201);
        patching = push.call('PATCH', `${attestations}/latest`, await node.agent.evidence(requested(created)), token, second);
        await waitForLockWaiters(knex, holder, 2);
      });
      expect((await patching)?.status).to.equal(202);
      const stored = await push.stored(node.uuid);
      expect(stored.state.operationalState, 'the FAIL is not overwritten by a PASS judged from the row before it').to.equal(OperationalState.FAILED);
      expect(stored.state.lastEventId).to.equal('internal.verifier.not_reachable');
      expect((await push.history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass', 'fail', 'pass']);
      expect(await push.announcement(node.uuid)).to.deep.equal({ type: 'comm_error', event_id: 'internal.verifier.not_reachable' });
      const judged = (await knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 1 }).first()) as { stage: string; evaluation: string };
      expect(judged).to.include({ stage: 'verification_complete', evaluation: 'pass' });
      // Nothing is left taken and unjudged: the next attestation is accepted (not 503), and judged.
      await new Promise((resolve) => setTimeout(resolve, 1050));
      const next = await push.call('POST', attestations, await node.agent.capabilities(), token, second);
      expect(next.status).to.equal(201);
      expect((await push.call('PATCH', `${attestations}/latest`, await node.agent.evidence(requested(next)), token, second)).status).to.equal(202);
      expect((await push.history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass', 'fail', 'pass', 'pass']);
      expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.FAILED);
    } finally {
      await second.close();
    }
  });
});
