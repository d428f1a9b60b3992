import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { contentOf, requested, usePushVerifier, type PushNode, type Reply } from './helpers/push-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

/**
 * Phase 2 of a push agent whose verdict PostgreSQL refuses for its values (a CHECK constraint the
 * test adds: a real refusal, SQLSTATE 23514). Retried for ever, the PATCH never answered and
 * `GET /health` stayed 503 for that one row. Now the verdict is given up after one retry alone and the
 * request fails closed: a refused PASS stores nothing (500, its evidence not taken, the attestation
 * awaiting it); a refused FAIL, its evidence taken at once, fails the agent with
 * `internal.verifier.exception` instead, stored and announced (202).
 */
describe('push model: a verdict PostgreSQL refuses for its values fails closed, not retried for ever (real PostgreSQL)', function () {
  this.timeout(60_000);
  // A long silence timeout: only the verdicts may fail the agent.
  const push = usePushVerifier({ pushTimeout: 600 });

  const knex = () => push.opened.database.knex;

  /** The verifier's failed verdict writes so far (`/metrics`). */
  async function failedWrites(): Promise<number> {
    const metrics = await push.verifier.service.app.inject({ method: 'GET', url: '/metrics' });
    return Number(/^ironlime_verifier_failed_writes_total (\d+)/m.exec(metrics.body)?.[1] ?? 0);
  }

  /**
   * `patch`'s reply, or 'still retrying' once `count` more writes failed first: a verdict tried for
   * ever never answers. The count stops being watched once the reply comes.
   */
  async function replyOrRetries(patch: Promise<Reply>, count: number): Promise<Reply | 'still retrying'> {
    const before = await failedWrites();
    let answered = false;
    const watched = patch.finally(() => (answered = true));
    const retrying = eventually(`${count} failed writes`, async () => answered || (await failedWrites()) >= before + count, 30_000, 50).then(() => 'still retrying' as const);
    return Promise.race([watched, retrying]);
  }

  /** An enrolled node whose first attestation passed, its second opened (201) and the evidence for it made (after `beforeEvidence`), not sent. */
  async function secondEvidence(beforeEvidence: (node: PushNode) => Promise<void> = async () => undefined) {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    expect(await node.agent.attestOnce()).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const token = await node.agent.openSession();
    const attestations = `/v3.0/agents/${node.uuid}/attestations`;
    const second = await push.call('POST', attestations, await node.agent.capabilities(), token);
    expect(second.status, JSON.stringify(second.body)).to.equal(201);
    await beforeEvidence(node);
    const evidence = await node.agent.evidence(requested(second));
    return { node, patch: () => push.call('PATCH', `${attestations}/latest`, evidence, token) };
  }

  const health = async () => (await push.verifier.service.app.inject({ method: 'GET', url: '/health' })).statusCode;
  const attestation = (node: PushNode) => knex()('verifier_push_attestations').where({ agent_id: node.uuid, index: 1 }).first() as Promise<Record<string, unknown>>;

  it('a refused PASS: 500, nothing stored, the attestation awaits its evidence, /health ready; judged once the refusal is gone', async function () {
    const { node, patch } = await secondEvidence();
    await knex().raw(`alter table verifier_attestation_history add constraint refuse_pass check (agent_id <> '${node.uuid}' or outcome <> 'pass') not valid`);
    const reply = await replyOrRetries(patch(), 8);
    expect(reply).to.not.equal('still retrying');
    expect((reply as Reply).status, JSON.stringify((reply as Reply).body)).to.equal(500);
    expect(await attestation(node)).to.include({ stage: 'awaiting_evidence', evidence_received_at: null });
    expect((await push.history(node.uuid)).map((round) => round.outcome)).to.deep.equal(['pass']);
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect(await health()).to.equal(200);
    await knex().raw('alter table verifier_attestation_history drop constraint refuse_pass');
    const again = await patch();
    expect(again.status, JSON.stringify(again.body)).to.equal(202);
    expect((await push.history(node.uuid)).map((round) => round.outcome)).to.deep.equal(['pass', 'pass']);
  });

  it('a refused FAIL: the agent failed with internal.verifier.exception in its place, stored and announced (202), /health ready', async function () {
    const { node, patch } = await secondEvidence(async (booted) => {
      await booted.ima.measure([{ path: '/usr/bin/nc', content: contentOf('/usr/bin/nc') }]);
    });
    // Refuses this agent's failures, but for the verifier's own exception.
    await knex().raw(
      `alter table verifier_attestation_history add constraint refuse_fail check (agent_id <> '${node.uuid}' or outcome <> 'fail' or failures::text like '%internal.verifier.exception%') not valid`,
    );
    const reply = await replyOrRetries(patch(), 8);
    await knex().raw('alter table verifier_attestation_history drop constraint refuse_fail');
    expect(reply).to.not.equal('still retrying');
    expect((reply as Reply).status, JSON.stringify((reply as Reply).body)).to.equal(202);
    const rounds = await push.history(node.uuid);
    expect(rounds.map((round) => round.outcome)).to.deep.equal(['pass', 'fail']);
    expect(JSON.stringify(rounds[1])).to.include('internal.verifier.exception').and.include("the database refused the verdict's values (SQLSTATE 23514)");
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.FAILED);
    expect(await attestation(node)).to.include({ stage: 'verification_complete', evaluation: 'fail' });
    expect(await push.announcement(node.uuid)).to.have.property('type');
    expect(await health()).to.equal(200);
  });
});
