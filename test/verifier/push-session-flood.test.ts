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
