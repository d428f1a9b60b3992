import { expect } from 'chai';
import { JSON_API, usePushVerifier } from './helpers/push-verifier.js';

/**
 * The per-agent session limit (15 a minute, §10.2) counted sessions before any proof, so anyone who
 * knew an agent id kept the agent from a token; its silence timeout then failed it, for good. Only
 * proven sessions count per agent now; unproven ones are bounded per client address (50 a minute).
 */
describe('push model: a flood of unproven sessions for an agent id', function () {
  this.timeout(60_000);
  const push = usePushVerifier();

  it('is bounded per client address (429 + Retry-After) and does not keep the agent from a session nor from attesting', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    const open = { data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } } };
    const statuses: number[] = [];
    let retryAfter: unknown;
    for (let i = 0; i < 60; i += 1) {
      const reply = await push.verifier.service.app.inject({ method: 'POST', url: '/v3.0/sessions', remoteAddress: '203.0.113.7', headers: { 'content-type': JSON_API }, payload: JSON.stringify(open) });
      statuses.push(reply.statusCode);
      retryAfter ??= reply.headers['retry-after'];
    }
    expect(await node.agent.attestOnce(), 'the agent opens its session and attests').to.equal(1);
    expect((await push.stored(node.uuid)).state.attestationCount).to.equal(1);
    expect(statuses.filter((s) => s === 200), 'unproven sessions from one address').to.have.length(50);
    expect(statuses.slice(50)).to.deep.equal(Array<number>(10).fill(429));
    expect(Number(retryAfter)).to.be.within(1, 60);
  });

});

/**
 * The per-agent limit (15 proven sessions a minute) was checked at open only: an AK holder who opened
 * many sessions, then proved them all, got every proof granted, each a 600,000-round PBKDF2.
 */
describe('push model: proofs of sessions opened before the per-agent limit filled', function () {
  this.timeout(60_000);
  const push = usePushVerifier();

  it('past 15 proven for the agent in a minute, a proof is 429 + Retry-After before its slow hash, even when sent at once with the others; the refused sessions stay unanswered', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    const open = { data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } } };
    const proofs: { id: string; body: object }[] = [];
    for (let i = 0; i < 18; i += 1) {
      const opened = await push.call('POST', '/v3.0/sessions', open);
      expect(opened.status, 'all opened before any proof').to.equal(200);
      const challenge = opened.body['data']['attributes']['authentication_requested'][0]['chosen_parameters']['challenge'] as string;
      const certified = await node.tpm.certifyAk('sha256', new Uint8Array(Buffer.from(challenge, 'base64')));
      const data = { message: Buffer.from(certified.attest).toString('base64'), signature: Buffer.from(certified.signature).toString('base64') };
      proofs.push({ id: opened.body['data']['id'] as string, body: { data: { type: 'session', attributes: { agent_id: node.uuid, authentication_provided: [{ authentication_class: 'pop', authentication_type: 'tpm_pop', data }] } } } });
    }
    const replies = await Promise.all(proofs.map((proof) => push.call('PATCH', `/v3.0/sessions/${proof.id}`, proof.body)));
    const granted = replies.filter((reply) => reply.status === 200 && reply.body['data']['attributes']['evaluation'] === 'pass');
    const refused = replies.filter((reply) => reply.status === 429);
    expect([granted.length, refused.length], JSON.stringify(replies.map((reply) => reply.status))).to.deep.equal([15, 3]);
    expect(refused[0]?.body['errors'][0]['code']).to.equal('too_many_requests');
    expect(Number(refused[0]?.headers['retry-after'])).to.be.within(1, 60);
    const refusedIds = proofs.filter((_, i) => replies[i]?.status === 429).map((proof) => proof.id);
    const rows = (await push.opened.database.knex('verifier_push_sessions').whereIn('session_id', refusedIds).select('token_hash')) as { token_hash: string | null }[];
    expect(rows.map((row) => row.token_hash), 'the refused sessions are not answered').to.deep.equal([null, null, null]);
    // And a proof of one of them later in the minute is refused the same way, not granted.
    const again = await push.call('PATCH', `/v3.0/sessions/${refusedIds[0] as string}`, proofs.find((proof) => proof.id === refusedIds[0])?.body);
    expect(again.status).to.equal(429);
  });
});
