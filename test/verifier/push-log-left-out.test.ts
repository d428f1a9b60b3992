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
  /**
   * Seconds: the agent's wait, and so the refusals' window (a phase 1 from one wait to two waits and a
   * second after the stored time of its last evidence is refused without a failure). One second left a
   * loaded host no room: a phase 1 sent 1.05 s after the evidence landed after the window.
   */
  const QUOTE_INTERVAL = 3;
  // A silence timeout far off: a failure seen within the test is the refusal's.
  const push = usePushVerifier({ pushTimeout: 600, quoteInterval: QUOTE_INTERVAL });

  async function until(time: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, time - Date.now())));
  }

  /** When the verifier took the agent's latest evidence (ms), and the whole second its row stores for it (ms). */
  async function lastEvidence(node: PushNode): Promise<{ readonly receivedAt: number; readonly stored: number }> {
    const row = (await push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid }).orderBy('index', 'desc').first('evidence_received_at')) as { evidence_received_at: Date | string };
    return { receivedAt: new Date(row.evidence_received_at).getTime(), stored: (await push.stored(node.uuid)).state.lastReceivedQuote * 1000 };
  }

  /**
   * Phase 1 with `capabilities` (made beforehand: reading a large log took seconds on a loaded host) one
   * wait after the last evidence, the first moment it is not early; refused 422, it must leave the agent
   * attesting, and it is answered before two waits and a second after the stored time.
   */
  async function refusedInTime(node: PushNode, token: string, capabilities: object, evidence: { readonly receivedAt: number; readonly stored: number }): Promise<void> {
    await until(evidence.receivedAt + QUOTE_INTERVAL * 1000 + 50);
    const refused = await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, capabilities, token);
    expect(Date.now(), 'phase 1 answered within the window (else this host is too slow for the check)').to.be.below(evidence.stored + (2 * QUOTE_INTERVAL + 1) * 1000);
    expect(refused.status, JSON.stringify(refused.body)).to.equal(422);
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
  }

  async function refusedWithout(node: PushNode, leaveOut: () => void, log: string): Promise<void> {
    expect((await push.enrol(node)).status).to.equal(200);
    const token = await node.agent.openSession();
    expect(await node.agent.attestOnce()).to.equal(QUOTE_INTERVAL);
    const evidence = await lastEvidence(node);
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
    leaveOut();
    const capabilities = await node.agent.capabilities();
    // Refused at its turn, it may have failed to read the log once: not failed yet.
    await refusedInTime(node, token, capabilities, evidence);
    // Still without it two waits and a second after the stored time: failed.
    await until(evidence.stored + (2 * QUOTE_INTERVAL + 1) * 1000 + 50);
    const refused = await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, capabilities, token);
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
    const token = await node.agent.openSession();
    expect(await node.agent.attestOnce()).to.equal(QUOTE_INTERVAL);
    const evidence = await lastEvidence(node);
    const imaLog = path.join(push.dir, `${node.uuid}.ima`);
    const saved = readFileSync(imaLog);
    rmSync(imaLog);
    await refusedInTime(node, token, await node.agent.capabilities(), evidence);
    writeFileSync(imaLog, saved);
    expect(await node.agent.attestOnce()).to.equal(QUOTE_INTERVAL);
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
