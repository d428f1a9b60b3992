import { expect } from 'chai';
import { decideLiveness, INITIAL_LIVENESS, type LivenessCheck } from '../../lib/attestation/liveness-decision.js';
import { hostSecretProof, newHostSecret } from '../../lib/identity/host-secret-proof.js';

const key = newHostSecret();
const check: LivenessCheck = { agentId: 'a1', mode: 'id-secret', proofKey: key, nonce: 'n0nce1', now: 1000, maxMisses: 3, intervalSeconds: 2 };
const answer = (results: unknown) => ({ kind: 'answer' as const, results });

describe('liveness decision (lib/attestation/liveness-decision.ts)', function () {
  it('an id-secret answer with the proof for this nonce is alive', function () {
    const next = decideLiveness(INITIAL_LIVENESS, check, answer({ agent_uuid: 'a1', identity_mode: 'id-secret', proof: hostSecretProof(key, 'a1', 'n0nce1') }));
    expect(next).to.deep.equal({ status: 'alive', misses: 0, lastSeen: 1000, lastFailure: null });
  });

  it('a replayed proof (another nonce), another key, another agent or a missing proof fails for good', function () {
    const cases: unknown[] = [
      { agent_uuid: 'a1', identity_mode: 'id-secret', proof: hostSecretProof(key, 'a1', 'old') },
      { agent_uuid: 'a1', identity_mode: 'id-secret', proof: hostSecretProof(newHostSecret(), 'a1', 'n0nce1') },
      { agent_uuid: 'a2', identity_mode: 'id-secret', proof: hostSecretProof(key, 'a1', 'n0nce1') },
      { agent_uuid: 'a1', identity_mode: 'id-only', proof: null },
      { agent_uuid: 'a1', identity_mode: 'id-secret' },
      { agent_uuid: 'a1', identity_mode: 'id-secret', proof: 'zz' },
      null,
      'text',
    ];
    for (const results of cases) {
      const next = decideLiveness(INITIAL_LIVENESS, check, answer(results));
      expect(next.status, JSON.stringify(results)).to.equal('failed');
      expect(decideLiveness(next, check, answer({ agent_uuid: 'a1', identity_mode: 'id-secret', proof: hostSecretProof(key, 'a1', 'n0nce1') })).status).to.equal('failed');
    }
  });

  it('id-only needs only an answer naming the agent', function () {
    const onlyCheck: LivenessCheck = { ...check, mode: 'id-only', proofKey: null };
    expect(decideLiveness(INITIAL_LIVENESS, onlyCheck, answer({ agent_uuid: 'a1', identity_mode: 'id-only', proof: null })).status).to.equal('alive');
  });

  it('silence counts misses and turns unreachable at maxMisses; an answer brings the node back', function () {
    let state = decideLiveness(INITIAL_LIVENESS, check, answer({ agent_uuid: 'a1', identity_mode: 'id-secret', proof: hostSecretProof(key, 'a1', 'n0nce1') }));
    for (let i = 1; i <= 3; i += 1) state = decideLiveness(state, { ...check, now: 1000 + 2 * i }, { kind: 'no_answer', message: 'refused' });
    expect(state).to.include({ status: 'unreachable', misses: 3, lastSeen: 1000 });
    const back = decideLiveness(state, { ...check, nonce: 'n2', now: 2000 }, answer({ agent_uuid: 'a1', identity_mode: 'id-secret', proof: hostSecretProof(key, 'a1', 'n2') }));
    expect(back).to.deep.equal({ status: 'alive', misses: 0, lastSeen: 2000, lastFailure: null });
  });

  it('three processes each missing the node once within one interval (a blip) do not make it unreachable; silence as long as one process needs does', function () {
    let state = decideLiveness(INITIAL_LIVENESS, check, answer({ agent_uuid: 'a1', identity_mode: 'id-secret', proof: hostSecretProof(key, 'a1', 'n0nce1') }));
    for (const now of [1001, 1001, 1002]) state = decideLiveness(state, { ...check, now }, { kind: 'no_answer', message: 'refused' });
    expect(state).to.include({ status: 'alive', misses: 3 });
    state = decideLiveness(state, { ...check, now: 1004 }, { kind: 'no_answer', message: 'refused' });
    expect(state).to.include({ status: 'unreachable', misses: 4 });
  });

  it('a node never seen since its enrolment is unreachable at maxMisses misses, however close together', function () {
    let state = INITIAL_LIVENESS;
    for (let i = 0; i < 3; i += 1) state = decideLiveness(state, check, { kind: 'no_answer', message: 'refused' });
    expect(state).to.include({ status: 'unreachable', misses: 3 });
  });

  it('a last answer dated ahead of now (the database clock stepped back an hour) does not keep a silent node from unreachable', function () {
    let state = decideLiveness(INITIAL_LIVENESS, check, answer({ agent_uuid: 'a1', identity_mode: 'id-secret', proof: hostSecretProof(key, 'a1', 'n0nce1') }));
    for (let i = 1; i <= 3; i += 1) state = decideLiveness(state, { ...check, now: 1000 - 3600 + 2 * i }, { kind: 'no_answer', message: 'refused' });
    expect(state).to.include({ status: 'unreachable', misses: 3 });
  });

  it('a last answer a second ahead (two processes storing out of order) is no clock step: a blip still needs the silence', function () {
    let state = decideLiveness(INITIAL_LIVENESS, check, answer({ agent_uuid: 'a1', identity_mode: 'id-secret', proof: hostSecretProof(key, 'a1', 'n0nce1') }));
    for (const now of [999, 1000, 1001]) state = decideLiveness(state, { ...check, now }, { kind: 'no_answer', message: 'refused' });
    expect(state).to.include({ status: 'alive', misses: 3 });
  });
});
