import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { capabilities as phase1, interval, patch as phase2, subjects, types } from './helpers/push-boot-log-calls.js';
import { PUSH_SETTINGS, usePushVerifier, type PushNode, type Reply } from './helpers/push-verifier.js';

/** A silence timeout far beyond the waits below (see push.test.ts). */
const SETTINGS = { ...PUSH_SETTINGS, pushTimeout: 60 };

/**
 * Push attestations without the unchanged boot log (issues 10 and 13): after an attestation that passed
 * with the `uefi_log`, the verifier process leaves it out of phase 1 while `system_info.boot_time` is
 * unchanged, and judges phase 2 with the log it holds; the quote still covers PCR 0.
 */
describe('push attestations without the boot log (issues 10 and 13)', function () {
  this.timeout(60_000);
  const push = usePushVerifier({ pushTimeout: SETTINGS.pushTimeout });

  const capabilities = (node: PushNode, token: string, bootTime?: string): Promise<Reply> => phase1(push, node, token, bootTime);
  const patch = (node: PushNode, token: string, next: Reply, at = push.verifier): Promise<Reply> => phase2(push, node, token, next, at);

  it('leaves the uefi_log out of later attestations (the quote still covers PCR 0), which pass; a new boot_time asks for it again', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    const token = await node.agent.openSession();
    const first = await capabilities(node, token);
    expect(types(first)).to.include('uefi_log');
    expect((await patch(node, token, first)).status).to.equal(202);
    for (let i = 0; i < 2; i += 1) {
      await interval();
      const next = await capabilities(node, token);
      expect(types(next)).to.not.include('uefi_log');
      expect(subjects(next)).to.include(0);
      expect((await patch(node, token, next)).status).to.equal(202);
    }
    await interval();
    const rebooted = await capabilities(node, token, new Date(Date.now() - 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    expect(types(rebooted)).to.include('uefi_log');
    expect((await patch(node, token, rebooted)).status).to.equal(202);
    expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass', 'pass', 'pass', 'pass']);
  });

  it('a boot PCR extended at runtime fails the attestation judged with the remembered log (measured_boot.invalid_pcr_1)', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    await node.tpm.extendPcr(1, 'sha256', new Uint8Array(createHash('sha256').update('runtime change').digest()));
    await interval();
    const token = await node.agent.openSession();
    const next = await capabilities(node, token);
    expect(types(next)).to.not.include('uefi_log');
    expect((await patch(node, token, next)).status).to.equal(202);
    const rows = await push.history(node.uuid);
    expect(rows.map((row) => row.outcome)).to.deep.equal(['pass', 'fail']);
    expect(rows.at(-1)?.failures.map((failure) => failure.event_id)).to.include('measured_boot.invalid_pcr_1');
  });

  /**
   * A node that passed once at the first process and, a quote interval later, has phase 1 there asked
   * without the log and its evidence sent to a second process on the same database, which holds none
   * and finds none stored (the row deleted here: a write that was lost): 503 `boot_log_not_held`,
   * nothing judged. `then` goes on from there.
   */
  async function refusedAtSecondProcess(instanceId: string, then: (second: RunningVerifier, node: PushNode, token: string) => Promise<void>): Promise<void> {
    const second = await startVerifier({ dataDir: push.dir, ...SETTINGS, instanceId }, { database: push.opened.database, inProcessForTests: true });
    try {
      const node = await push.bootNode();
      await push.enrol(node);
      expect(await node.agent.attestOnce()).to.equal(1);
      await interval();
      const token = await node.agent.openSession();
      const held = await capabilities(node, token);
      expect(types(held)).to.not.include('uefi_log');
      await push.opened.database.knex('verifier_push_boot_logs').where({ agent_id: node.uuid }).delete();
      const refused = await patch(node, token, held, second);
      expect(refused.status).to.equal(503);
      expect(refused.body['errors'][0]['code']).to.equal('boot_log_not_held');
      expect(Number(refused.headers['retry-after'])).to.equal(1);
      expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass']);
      // The refused attestation still awaits its evidence: the next phase 1 waits quote_interval from its creation (429 before).
      await interval();
      await then(second, node, token);
      expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass', 'pass']);
    } finally {
      await second.close();
    }
  }

  it('evidence without the log at a process that neither holds nor finds it stored is refused (503, not judged); the next attestation there asks for the log and passes', async function () {
    await refusedAtSecondProcess('second-boot-log-process', async (second, node, token) => {
      const again = await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, await node.agent.capabilities(), token, second);
      expect(again.status).to.equal(201);
      expect(types(again)).to.include('uefi_log');
      expect((await patch(node, token, again, second)).status).to.equal(202);
    });
  });

  it('after such a refusal the process that holds the log asks for it too: an agent whose phases reach two processes is not held in a loop', async function () {
    await refusedAtSecondProcess('second-boot-log-loop', async (second, node, token) => {
      const asked = await capabilities(node, token);
      expect(asked.status).to.equal(201);
      expect(types(asked), 'phase 1 at the holder after an abandoned attestation asked without the log').to.include('uefi_log');
      expect((await patch(node, token, asked, second)).status).to.equal(202);
    });
  });
});
