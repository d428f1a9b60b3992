import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { usePushVerifier, type PushNode } from './helpers/push-verifier.js';

/**
 * An enrolment stored before weak AKs were refused at enrolment (or written by another tool) holds a
 * 1024-bit RSA AK. A push agent's phase 1 loads it: the agent must be failed then, not refused phase 1
 * after phase 1 (400) while its last PASS stands until its silence timeout.
 */
describe('push model: an enrolment stored with a weak AK is failed at phase 1 (real PostgreSQL)', function () {
  this.timeout(60_000);
  const push = usePushVerifier({ pushTimeout: 60 });

  it('stores a FAIL (internal.verifier.exception) naming the AK, once, and refuses the attestation', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    expect(await node.agent.attestOnce()).to.equal(1);
    const token = await node.agent.openSession();
    await push.opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).update({ ak_tpm: new FakeAgent({ akRsaBits: 1024 }).akTpm });
    await new Promise((resolve) => setTimeout(resolve, 1050));
    for (const attempt of [1, 2]) {
      const created = await push.capabilities(node, token);
      expect(created.status, `attempt ${attempt}`).to.equal(400);
      expect(JSON.stringify(created.body)).to.contain('the AK is a 1024-bit RSA key');
    }
    const stored = await push.stored(node.uuid);
    expect(stored.state.operationalState).to.equal(OperationalState.FAILED);
    expect(stored.state.lastEventId).to.equal('internal.verifier.exception');
    const history = await push.history(node.uuid);
    expect(history.map((row) => row.outcome)).to.deep.equal(['pass', 'fail']);
    expect(JSON.stringify(history[1])).to.match(/the AK is a 1024-bit RSA key/);
    expect(await push.announcement(node.uuid)).to.deep.equal({ type: 'comm_error', event_id: 'internal.verifier.exception' });
  });

  /** A session opened for `node` and proven with a TPM2_Certify by `signer`'s AK, by anyone: the session endpoints take no token. */
  async function proveAs(node: PushNode, signer: FakeAgent) {
    const pop = { authentication_class: 'pop', authentication_type: 'tpm_pop' };
    const opened = await push.call('POST', '/v3.0/sessions', { data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [pop] } } });
    expect(opened.status).to.equal(200);
    const challenge = opened.body['data']['attributes']['authentication_requested'][0]['chosen_parameters']['challenge'] as string;
    const proof = signer.certifyAk(new Uint8Array(Buffer.from(challenge, 'base64')));
    const data = { message: Buffer.from(proof.attest).toString('base64'), signature: Buffer.from(proof.signature).toString('base64') };
    return push.call('PATCH', `/v3.0/sessions/${opened.body['data']['id'] as string}`, { data: { type: 'session', attributes: { agent_id: node.uuid, authentication_provided: [{ ...pop, data }] } } });
  }

  it('refuses the session proof (401) of an agent that holds the weak AK stored (its key proves no TPM) and fails the agent', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    const weak = new FakeAgent({ akRsaBits: 1024 });
    await push.opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).update({ ak_tpm: weak.akTpm });
    const proved = await proveAs(node, weak);
    expect(proved.status).to.equal(401);
    expect(proved.body['data']['attributes']['evaluation']).to.equal('fail');
    expect(JSON.stringify(proved.body)).to.not.contain('"token"');
    // Refused at the session, the agent would never reach phase 1: it is failed there, not left on its last PASS.
    const stored = await push.stored(node.uuid);
    expect(stored.state.operationalState).to.equal(OperationalState.FAILED);
    expect(stored.state.lastEventId).to.equal('internal.verifier.exception');
    expect(JSON.stringify(await push.history(node.uuid))).to.match(/the AK is a 1024-bit RSA key/);
    // Enrolled again with its sound AK, the agent attests and passes.
    await push.reenrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
  });

  it('a proof by a weak AK sent for a sound agent (anyone may open its session) is refused and fails nothing: only the stored AK decides', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    expect(await node.agent.attestOnce()).to.equal(1);
    push.logged.length = 0;
    expect((await proveAs(node, new FakeAgent({ akRsaBits: 1024 }))).status).to.equal(401);
    // The agent is told only "fail": why is in the verifier's log, for the operator.
    const refused = push.logged.filter((line) => line['msg'] === 'push session proof refused');
    expect(refused.map((line) => [line['agentId'], line['status']])).to.deep.equal([[node.uuid, 401]]);
    expect(String(refused[0]?.['reason'])).to.not.equal('');
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass']);
  });
});
