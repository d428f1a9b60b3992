import { readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { MAX_BOOT_LOG_BYTES } from '../../lib/agent/boot-log-cache.js';
import { usePushVerifier, type PushNode } from './helpers/push-verifier.js';

/**
 * A push agent that stops offering a log its policy needs (its UEFI log grew past what the agent
 * sends, its IMA list became unreadable) talks every interval, and every phase 1 is refused (422).
 * Refused alone, it kept its last PASS until the silence sweep failed it as unreachable, which it
 * is not. It is failed at such a phase 1 instead, naming the log, and the 422 still answers — once
 * the log is still missing two quote intervals after its last evidence: one read that failed on the
 * node is refused, not failed for good.
 */
describe('push model: an agent that leaves out a log its policy needs is failed, not left to its silence timeout (real PostgreSQL)', function () {
  this.timeout(60_000);
  // A silence timeout far off: a failure seen within the test is the refusal's.
  const push = usePushVerifier({ pushTimeout: 600 });

  /** Waits until `seconds` after `since`, a time taken once the agent's last evidence was answered. */
  async function secondsAfter(since: number, seconds: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, since + seconds * 1000 - Date.now())));
  }

  async function refusedWithout(node: PushNode, leaveOut: () => void, log: string): Promise<void> {
    expect((await push.enrol(node)).status).to.equal(200);
    expect(await node.agent.attestOnce()).to.equal(1);
    const attested = Date.now();
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
    const token = await node.agent.openSession();
    leaveOut();
    // Refused at its turn (one quote interval after its evidence) it may have failed to read the log once: not failed yet.
    await secondsAfter(attested, 1.05);
    expect((await push.capabilities(node, token)).status).to.equal(422);
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
    // Still without it two quote intervals after its evidence (plus the second the stored time may lag): failed.
    await secondsAfter(attested, 3.05);
    const refused = await push.capabilities(node, token);
    expect(refused.status, JSON.stringify(refused.body)).to.equal(422);
    expect(JSON.stringify(refused.body)).to.contain(`no ${log} is offered`);
    const stored = await push.stored(node.uuid);
    expect(stored.state.operationalState).to.equal(OperationalState.FAILED);
    expect(stored.state.lastEventId).to.equal('internal.verifier.no_quote');
    const history = await push.history(node.uuid);
    expect(history.map((row) => row.outcome)).to.deep.equal(['pass', 'fail']);
    expect(JSON.stringify(history[1])).to.contain(`no ${log} is offered`);
    expect(await push.announcement(node.uuid)).to.deep.equal({ type: 'comm_error', event_id: 'internal.verifier.no_quote' });
    // Refused again, the failure is not stored twice.
    await new Promise((resolve) => setTimeout(resolve, 1050));
    expect((await push.capabilities(node, token)).status).to.equal(422);
    expect(await push.history(node.uuid)).to.have.length(2);
  }

  for (const log of ['uefi_log', 'ima_log']) {
    it(`evidence without the ${log} phase 1 asked for is judged (failing, 202), not refused 422 again and again`, async function () {
      const node = await push.bootNode();
      expect((await push.enrol(node)).status).to.equal(200);
      const { token, created, evidence } = await push.issuedEvidence(node);
      const body = evidence as { data: { attributes: { evidence_collected: { evidence_type: string }[] } } };
      expect(body.data.attributes.evidence_collected.map((item) => item.evidence_type)).to.include(log);
      body.data.attributes.evidence_collected = body.data.attributes.evidence_collected.filter((item) => item.evidence_type !== log);
      const judged = await push.call('PATCH', created.headers['location'] as string, body, token);
      expect(judged.status, JSON.stringify(judged.body)).to.equal(202);
      const stored = await push.stored(node.uuid);
      expect(stored.state.operationalState).to.equal(OperationalState.INVALID_QUOTE);
      const history = await push.history(node.uuid);
      expect(history.map((row) => row.outcome)).to.deep.equal(['fail']);
      expect(JSON.stringify(history[0])).to.match(log === 'ima_log' ? /pcr_validation\.unused_pcr_10/ : /pcr_validation\.unused_pcr_0/);
    });
  }

  it('a log missing from one phase 1 only (a read that failed once on the node) does not fail the agent: refused, it attests again with the log and passes', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    expect(await node.agent.attestOnce()).to.equal(1);
    const attested = Date.now();
    const imaLog = path.join(push.dir, `${node.uuid}.ima`);
    const saved = readFileSync(imaLog);
    const token = await node.agent.openSession();
    rmSync(imaLog);
    await secondsAfter(attested, 1.05);
    const refused = await push.capabilities(node, token);
    expect(refused.status, JSON.stringify(refused.body)).to.equal(422);
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
    writeFileSync(imaLog, saved);
    expect(await node.agent.attestOnce()).to.equal(1);
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass', 'pass']);
  });

  it('a UEFI log grown past what the agent sends (no uefi_log offered) with a measured-boot policy enrolled', async function () {
    const node = await push.bootNode();
    await refusedWithout(node, () => truncateSync(path.join(push.dir, `${node.uuid}.boot`), MAX_BOOT_LOG_BYTES + 1), 'uefi_log');
  });

  it('an IMA list that became unreadable (no ima_log offered) with a runtime policy enrolled', async function () {
    const node = await push.bootNode();
    await refusedWithout(node, () => rmSync(path.join(push.dir, `${node.uuid}.ima`)), 'ima_log');
  });
});
