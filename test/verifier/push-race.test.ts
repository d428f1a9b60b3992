import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { backendPid, waitForLockWaiters } from '../helpers/lock-waits.js';
import { PUSH_SETTINGS, requested, usePushVerifier } from './helpers/push-verifier.js';

describe('push model: a verdict and another process\'s silence FAIL in flight at once (two verifier instances, one PostgreSQL)', function () {
  this.timeout(60_000);
  /**
   * The first instance's silence timeout (seconds): the agent's row must be locked before it runs out,
   * from the stored time of its evidence, in whole seconds (up to one before the evidence came).
   */
  const SILENCE = 6;
  const push = usePushVerifier({ pushTimeout: SILENCE });

  /**
   * The first instance's sweep fails a silent agent while the second instance judges its evidence:
   * the test holds the agent's row locked until the sweep's FAIL and the second instance's verdict
   * (or its take-over of the row) both wait for it, in that order, then lets them go. Phase 1 goes to
   * `issuer`: the second instance itself (it judges without a read and takes the evidence in its
   * verdict's transaction) or the first (the second reads the attestation back and takes the evidence
   * before judging). Then checks what the agent's row and attestations look like, and that the agent
   * attests on.
   */
  async function race(second: RunningVerifier, issuer: RunningVerifier): Promise<void> {
    const node = await push.bootNode();
    // No refstate: the first instance would leave the uefi_log out, and the second refuse that evidence unjudged (push-boot-log.test.ts).
    await push.enrol(node, { mb_policy: undefined });
    // Opened before the evidence: a session took 4 s on a loaded host, and the sweep had failed the agent before the lock.
    const token = await node.agent.openSession();
    expect(await node.agent.attestOnce()).to.equal(1);
    const knex = push.opened.database.knex;
    const attestations = `/v3.0/agents/${node.uuid}/attestations`;
    let patching: ReturnType<typeof push.call> | undefined;
    await knex.transaction(async (trx) => {
      // The first instance's sweep, once the agent is silent for its timeout, reads the row and queues its FAIL behind this lock.
      const locked = (await trx('verifier_agents').where({ agent_id: node.uuid }).forUpdate().first('operational_state')) as { operational_state: number };
      expect(locked.operational_state, `still attesting when its row was locked (else this host took ${SILENCE} s from its evidence to the lock)`).to.equal(OperationalState.GET_QUOTE);
      const holder = await backendPid(trx);
      await waitForLockWaiters(knex, holder, 1);
      // Meanwhile the agent's evidence reaches the second instance, judged from the row as it was and taken.
      const created = await push.call('POST', attestations, await node.agent.capabilities(), token, issuer);
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
  }

  /** A second instance whose own silence timeout is long, so only the first one's sweep fails the agent. */
  async function withSecond(instanceId: string | undefined, run: (second: RunningVerifier) => Promise<void>): Promise<void> {
    const second = await startVerifier(
      { dataDir: push.dir, ...PUSH_SETTINGS, pushTimeout: 600, ...(instanceId === undefined ? {} : { instanceId }) },
      { database: push.opened.database, inProcessForTests: true },
    );
    try {
      await run(second);
    } finally {
      await second.close();
    }
  }

  it('evidence taken in the verdict\'s transaction before the FAIL committed, its statement after (one owner name: a shared data directory)', async function () {
    await withSecond(undefined, (second) => race(second, second));
  });

  it('evidence read back and taken before the FAIL committed, the row taken over and the verdict stored after (owner names of their own)', async function () {
    await withSecond('second-instance', (second) => race(second, push.verifier));
  });
});
