import { expect } from 'chai';
import { decideResourceAccess } from '../../lib/broker/resource-policy.js';

describe('broker: resource policy by attestation result (required_claims)', function () {
  it('resource policy: required_claims must be AR4SI affirming (2..31) in every vector; none kept refuses', function () {
    const policy = { agents: ['a'], groups: [], allow_tokens: true, required_claims: ['configuration', 'hardware'] as const };
    const decide = (...vectors: unknown[]): string | undefined => {
      const decision = decideResourceAccess(policy, { agentId: 'a', groups: [], via: 'token', vectors: vectors.map((vector, i) => ({ source: `s${i}`, vector })) });
      return decision.allowed ? undefined : decision.reason;
    };
    expect(decide({ configuration: 2, hardware: 31 })).to.equal(undefined);
    expect(decide({ configuration: 2, hardware: 2 }, { configuration: 3, hardware: 2 })).to.equal(undefined);
    expect(decide({ configuration: 1, hardware: 2 })).to.equal('node a: claim configuration is 1 in s0 (required affirming: 2..31)');
    expect(decide({ configuration: 2, hardware: 32 })).to.equal('node a: claim hardware is 32 in s0 (required affirming: 2..31)');
    expect(decide({ configuration: 2, hardware: 2 }, { configuration: -1, hardware: 2 })).to.contain('claim configuration is -1 in s1');
    expect(decide({ configuration: 2.5, hardware: 2 })).to.contain('is 2.5');
    expect(decide({ configuration: '2', hardware: 2 })).to.contain('is "2"');
    expect(decide(undefined)).to.contain('claim configuration is absent in s0');
    expect(decide()).to.equal('node a: claim configuration is required and this credential carries no trustworthiness vector: attest again');
    const session = decideResourceAccess(policy, { agentId: 'a', groups: [], via: 'session', vectors: null });
    expect(session, 'no vector kept: the credential is unusable, attest again').to.deep.include({ allowed: false, attestAgain: true });
    const withVector = decideResourceAccess(policy, { agentId: 'a', groups: [], via: 'session', vectors: [{ source: 's', vector: { configuration: 0 } }] });
    expect(withVector, 'a vector that does not affirm: the node is refused').to.deep.include({ allowed: false, attestAgain: false });
    expect(decideResourceAccess({ ...policy, required_claims: [] }, { agentId: 'a', groups: [], via: 'session', vectors: null }).allowed).to.equal(true);
  });
});
