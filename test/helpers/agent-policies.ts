import type { AgentPolicies } from '../../lib/attestation/agent-policies.js';

/**
 * An agent's policies for tests that call the engine directly: `akTpm` and sha256/rsa/rsassa accepted,
 * no runtime policy, no refstate, measured boot evaluated once, an empty `tpm_policy`; `overrides`
 * replace any of them.
 */
export function testAgentPolicies(akTpm: AgentPolicies['akTpm'], overrides: Partial<AgentPolicies> = {}): AgentPolicies {
  return {
    tpmPolicy: '{}',
    runtimePolicy: null,
    mbRefstate: null,
    measuredBootEvaluate: 'once',
    acceptTpmHashAlgs: ['sha256'],
    acceptTpmEncryptionAlgs: ['rsa'],
    acceptTpmSigningAlgs: ['rsassa'],
    akTpm,
    ...overrides,
  };
}
