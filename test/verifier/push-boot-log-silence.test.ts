import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { capabilities, interval, patch, types } from './helpers/push-boot-log-calls.js';
import { PUSH_SETTINGS, usePushVerifier, type PushNode, type PushVerifier } from './helpers/push-verifier.js';

const BOOT_LOGS = 'verifier_push_boot_logs';

/**
 * A silence failure and the stored boot log (docs/push.md "Tenth pass: the stored boot log's order"):
 * the failure tombstones the log in its own transaction, and the process that still holds the log in
 * memory asks the agent for it again — while the agent is failed, and after a reactivation — as after a
 * failing verdict. At PUSH_SETTINGS' 3 s silence timeout. Each test has its own verifier, so each runs
 * alone (`--grep`) as well as in any order.
 */
describe('push boot logs after a silence failure', function () {
  this.timeout(60_000);

  const stored = async (push: PushVerifier, uuid: string) =>
    (await push.opened.database.knex(BOOT_LOGS).where({ agent_id: uuid }).select('attestation_index', push.opened.database.knex.raw('event_log is not null as log'))) as { attestation_index: number; log: boolean }[];

  /** A node that passed once with its log (held here, and stored). */
  async function attestedNode(push: PushVerifier): Promise<PushNode> {
    const node = await push.bootNode();
    await push.enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    expect(await stored(push, node.uuid)).to.deep.equal([{ attestation_index: 0, log: true }]);
    return node;
  }

  /** Waits out the silence timeout and sweeps: `node` is failed for it and its log tombstoned at `index`. */
  async function silenced(push: PushVerifier, node: PushNode, index: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 3200));
    await push.verifier.push.silenceSweep.tick();
    expect((await push.stored(node.uuid)).state.lastEventId).to.equal('internal.verifier.not_reachable');
    expect(await stored(push, node.uuid), 'the silence tombstoned the log').to.deep.equal([{ attestation_index: index, log: false }]);
  }

  /** Phase 1 asks `node` for its log (`when` names the moment) and the pass of `index` stores it again. */
  async function logAskedAndStoredAgain(push: PushVerifier, node: PushNode, token: string, index: number, when: string): Promise<void> {
    const asked = await capabilities(push, node, token);
    expect(asked.status).to.equal(201);
    expect(types(asked), when).to.include('uefi_log');
    expect((await patch(push, node, token, asked)).status).to.equal(202);
    expect(await stored(push, node.uuid)).to.deep.equal([{ attestation_index: index, log: true }]);
  }

  /**
   * Reactivates `node` at a second process (the one reactivating drops its own record, `PullScheduler`;
   * the one holding the log does not learn of it), with both silence sweeps closed: the reactivated
   * agent's last quote is older than the timeout, and no second silence failure may come while the test
   * runs. The suite's verifier is this test's alone.
   */
  async function reactivatedElsewhere(push: PushVerifier, node: PushNode, instanceId: string): Promise<RunningVerifier> {
    const second = await startVerifier({ dataDir: push.dir, ...PUSH_SETTINGS, instanceId }, { database: push.opened.database, inProcessForTests: true });
    await second.push.silenceSweep.close();
    await push.verifier.push.silenceSweep.close();
    expect((await push.call('PUT', `/v2.5/agents/${node.uuid}/reactivate`, undefined, undefined, second)).status).to.equal(200);
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.START);
    return second;
  }

  describe('with the latest attestation passed', function () {
    const push = usePushVerifier();

    it('the process holding the log asks for it at the next phase 1; the pass stores it again, and the one after leaves it out', async function () {
      const node = await attestedNode(push);
      await silenced(push, node, 0);
      const token = await node.agent.openSession();
      await logAskedAndStoredAgain(push, node, token, 1, 'phase 1 after the silence');
      await interval();
      const held = await capabilities(push, node, token);
      expect(types(held), 'once verified again').to.not.include('uefi_log');
      expect((await patch(push, node, token, held)).status).to.equal(202);
      expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass', 'fail', 'pass', 'pass']);
    });
  });

  describe('reactivated at another process, no attestation between', function () {
    const push = usePushVerifier();

    it('the agent is asked for the log at the process holding it', async function () {
      const node = await attestedNode(push);
      await silenced(push, node, 0);
      const second = await reactivatedElsewhere(push, node, 'silence-reactivates');
      try {
        const token = await node.agent.openSession();
        await logAskedAndStoredAgain(push, node, token, 1, 'phase 1 after the reactivation');
      } finally {
        await second.close();
      }
    });
  });

  describe('with the latest attestation never judged', function () {
    const push = usePushVerifier();

    it('reactivated at another process, the agent is asked for the log at the process holding it', async function () {
      const node = await attestedNode(push);
      await interval();
      const token = await node.agent.openSession();
      const held = await capabilities(push, node, token);
      expect(types(held), 'the log held').to.not.include('uefi_log');
      // Its evidence taken by a process that died while judging it, long enough ago that phase 1 is not refused for it.
      await push.opened.database
        .knex('verifier_push_attestations')
        .where({ agent_id: node.uuid, index: 1 })
        .update({ stage: 'evaluating_evidence', evidence_received_at: new Date(Date.now() - 600_000) });
      await silenced(push, node, 1);
      const second = await reactivatedElsewhere(push, node, 'silence-unjudged-reactivates');
      try {
        await logAskedAndStoredAgain(push, node, token, 2, 'phase 1 after the reactivation');
      } finally {
        await second.close();
      }
    });
  });
});
