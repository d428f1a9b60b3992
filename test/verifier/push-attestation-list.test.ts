import { expect } from 'chai';
import { KEPT_ATTESTATIONS } from '../../lib/verifier/push/push-statements.js';
import { usePushVerifier } from './helpers/push-verifier.js';

const ATTESTATIONS = 'verifier_push_attestations';

/** `GET /v3.0/agents/{id}/attestations` listed the oldest 1000, so an agent with more never saw its latest there. */
describe('push model: the list of an agent\'s attestations', function () {
  this.timeout(60_000);
  const push = usePushVerifier();

  it(`answers the newest ${KEPT_ATTESTATIONS} (all an agent keeps), oldest first, the latest last`, async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    expect(await node.agent.attestOnce()).to.equal(1);
    // More rows than the list ever answered, as a table from before the pruning could hold.
    await push.opened.database.knex.raw(
      `insert into ${ATTESTATIONS} (agent_id, index, stage, evaluation, failure_reason, challenge, choice, system_info, capabilities_received_at, challenges_expire_at, evidence_received_at, verification_completed_at)
       select agent_id, g, stage, evaluation, failure_reason, challenge, choice, system_info, capabilities_received_at, challenges_expire_at, evidence_received_at, verification_completed_at
       from ${ATTESTATIONS}, generate_series(1, 1001) g where agent_id = ? and index = 0`,
      [node.uuid],
    );
    const token = await node.agent.openSession();
    const list = await push.call('GET', `/v3.0/agents/${node.uuid}/attestations`, undefined, token);
    expect(list.status).to.equal(200);
    const ids = (list.body['data'] as { id: string }[]).map((d) => Number(d.id));
    const latest = await push.call('GET', `/v3.0/agents/${node.uuid}/attestations/latest`, undefined, token);
    expect(latest.body['data']['id']).to.equal('1001');
    expect(ids).to.deep.equal(Array.from({ length: KEPT_ATTESTATIONS }, (_, i) => 1002 - KEPT_ATTESTATIONS + i));
  });
});
