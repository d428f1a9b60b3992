import { expect } from 'chai';
import { KEPT_ATTESTATIONS } from '../../lib/verifier/push/push-statements.js';
import { requested, usePushVerifier, type PushNode } from './helpers/push-verifier.js';

const ATTESTATIONS = 'verifier_push_attestations';

/**
 * Phase 1 without evidence was not paced (the 429 needed a previous evidence), so one token stored a
 * row per POST as fast as it could send them, and no attestation row was ever removed but by the
 * agent's deletion.
 */
describe('push model: phase 1 without evidence, and the attestations kept', function () {
  this.timeout(60_000);
  const push = usePushVerifier();
  const waitQuoteInterval = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1100));

  const indexes = async (node: PushNode): Promise<number[]> =>
    ((await push.opened.database.knex(ATTESTATIONS).where({ agent_id: node.uuid }).orderBy('index').select('index')) as { index: number }[]).map((row) => row.index);

  /** Copies of the agent's attestation 0 at `from`..`to` (older indexes than any the verifier gave). */
  const seed = async (node: PushNode, from: number, to: number): Promise<void> => {
    await push.opened.database.knex.raw(
      `insert into ${ATTESTATIONS} (agent_id, index, stage, evaluation, failure_reason, challenge, choice, system_info, capabilities_received_at, challenges_expire_at, evidence_received_at, verification_completed_at)
       select agent_id, g, stage, evaluation, failure_reason, challenge, choice, system_info, capabilities_received_at, challenges_expire_at, evidence_received_at, verification_completed_at
       from ${ATTESTATIONS}, generate_series(?::int, ?::int) g where agent_id = ? and index = 0`,
      [from, to, node.uuid],
    );
  };

  it('a phase 1 while the latest attestation awaits its evidence is 429 premature_attestation with Retry-After until quote_interval has passed since it was created', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    const token = await node.agent.openSession();
    expect((await push.capabilities(node, token)).status).to.equal(201);
    const refused = await push.capabilities(node, token);
    expect(refused.status, JSON.stringify(refused.body)).to.equal(429);
    expect(refused.body['errors'][0]['code']).to.equal('premature_attestation');
    expect(refused.headers['retry-after']).to.equal('1');
    expect(await indexes(node), 'nothing stored by the refused POST').to.deep.equal([0]);
    await waitQuoteInterval();
    const created = await push.capabilities(node, token);
    expect(created.status).to.equal(201);
    expect(await indexes(node)).to.deep.equal([0, 1]);
    // The attestation created last is answered and judged as usual.
    const evidence = await node.agent.evidence(requested(created));
    expect((await push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/1`, evidence, token)).status).to.equal(202);
    expect((await push.stored(node.uuid)).state.attestationCount).to.equal(1);
  });

  it(`keeps an agent's newest ${KEPT_ATTESTATIONS} attestations, phase 1's insert deleting the one falling out (after this process's verdict and after a read)`, async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    expect(await node.agent.attestOnce()).to.equal(1);
    // Consecutive indexes, as phase 1 gives them: -99..0, KEPT_ATTESTATIONS rows.
    await seed(node, 1 - KEPT_ATTESTATIONS, -1);
    await waitQuoteInterval();
    // This process stored the agent's last verdict: the batched insert.
    expect(await node.agent.attestOnce()).to.equal(1);
    let kept = await indexes(node);
    expect([kept.length, kept[0], kept.at(-1)]).to.deep.equal([KEPT_ATTESTATIONS, 2 - KEPT_ATTESTATIONS, 1]);
    // A changed row sends phase 1 down the path that reads the agent and inserts alone.
    await push.opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).increment('content_version', 1);
    await waitQuoteInterval();
    expect(await node.agent.attestOnce()).to.equal(1);
    kept = await indexes(node);
    expect([kept.length, kept[0], kept.at(-1)]).to.deep.equal([KEPT_ATTESTATIONS, 3 - KEPT_ATTESTATIONS, 2]);
    expect((await push.stored(node.uuid)).state.attestationCount).to.equal(3);
  });
});
