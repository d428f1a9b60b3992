import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { startVerifier } from '../../lib/verifier/verifier-server.js';
import { capabilities, interval, patch, types } from './helpers/push-boot-log-calls.js';
import { PUSH_SETTINGS, usePushVerifier, type PushNode } from './helpers/push-verifier.js';

const BOOT_LOGS = 'verifier_push_boot_logs';

/**
 * A silence failure and the stored boot log (docs/push.md "Tenth pass: the stored boot log's order"):
 * the failure tombstones the log in its own transaction, and the process that still holds the log in
 * memory asks the agent for it again — while the agent is failed, and after a reactivation — as after a
 * failing verdict. At PUSH_SETTINGS' 3 s silence timeout.
 */
describe('push boot logs after a silence failure', function () {
  this.timeout(60_000);
  const push = usePushVerifier();
  const knex = () => push.opened.database.knex;
  const stored = async (uuid: string) =>
    (await knex()(BOOT_LOGS).where({ agent_id: uuid }).select('attestation_index', knex().raw('event_log is not null as log'))) as { attestation_index: number; log: boolean }[];

  /** A node that passed once with its log (held here, and stored), then went silent and was failed for it. */
  async function silencedNode(): Promise<PushNode> {
    const node = await push.bootNode();
    await push.enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    expect(await stored(node.uuid)).to.deep.equal([{ attestation_index: 0, log: true }]);
    await new Promise((resolve) => setTimeout(resolve, 3200));
    await push.verifier.push.silenceSweep.tick();
    expect((await push.stored(node.uuid)).state.lastEventId).to.equal('internal.verifier.not_reachable');
    expect(await stored(node.uuid), 'the silence tombstoned the log').to.deep.equal([{ attestation_index: 0, log: false }]);
    return node;
  }

  it('the process holding the log asks for it at the next phase 1; the pass stores it again, and the one after leaves it out', async function () {
    const node = await silencedNode();
    const token = await node.agent.openSession();
    const asked = await capabilities(push, node, token);
    expect(asked.status).to.equal(201);
    expect(types(asked), 'phase 1 after the silence').to.include('uefi_log');
    expect((await patch(push, node, token, asked)).status).to.equal(202);
    expect(await stored(node.uuid)).to.deep.equal([{ attestation_index: 1, log: true }]);
    await interval();
    const held = await capabilities(push, node, token);
    expect(types(held), 'once verified again').to.not.include('uefi_log');
    expect((await patch(push, node, token, held)).status).to.equal(202);
    expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass', 'fail', 'pass', 'pass']);
  });

  it('reactivated at another process after the silence, with no attestation between, the agent is asked for the log at the process holding it', async function () {
    const node = await silencedNode();
    // The process that reactivates drops its own record (`PullScheduler`); the one holding the log does not learn of it.
    const second = await startVerifier({ dataDir: push.dir, ...PUSH_SETTINGS, instanceId: 'silence-reactivates' }, { database: push.opened.database, inProcessForTests: true });
    try {
      // No second silence failure while the test runs (the reactivated agent's last quote is older than
      // the timeout): both sweeps stop, the suite's for good, so this test comes last.
      await second.push.silenceSweep.close();
      await push.verifier.push.silenceSweep.close();
      expect((await push.call('PUT', `/v2.5/agents/${node.uuid}/reactivate`, undefined, undefined, second)).status).to.equal(200);
      expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.START);
      const token = await node.agent.openSession();
      const asked = await capabilities(push, node, token);
      expect(asked.status).to.equal(201);
      expect(types(asked), 'phase 1 after the reactivation').to.include('uefi_log');
      expect((await patch(push, node, token, asked)).status).to.equal(202);
      expect(await stored(node.uuid)).to.deep.equal([{ attestation_index: 1, log: true }]);
    } finally {
      await second.close();
    }
  });
});
