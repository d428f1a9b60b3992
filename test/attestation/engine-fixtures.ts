import type { AgentPolicies } from '../../lib/attestation/agent-policies.js';
import { compileRuntimePolicy, type CompiledRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { emptyRuntimePolicy, parseRuntimePolicy, POLICY_GENERATOR } from '../../lib/ima/runtime-policy.js';
import type { FakeAgent } from './fake-agent.js';

/**
 * A Keylime runtime policy (generator CompatibleAllowList) allowing exactly the files of `lines`
 * (ASCII ima-ng lines), minus the paths in `leaveOut`.
 */
export function runtimePolicyFor(lines: readonly string[], leaveOut: readonly string[] = []): CompiledRuntimePolicy {
  const policy = emptyRuntimePolicy();
  policy.meta.generator = POLICY_GENERATOR.CompatibleAllowList;
  for (const line of lines) {
    const [, , , algDigest, path] = line.split(' ') as [string, string, string, string, string];
    const digest = algDigest.split(':')[1] as string;
    if (!leaveOut.includes(path)) {
      policy.digests[path] = [...(policy.digests[path] ?? []), digest];
    }
  }
  return compileRuntimePolicy(parseRuntimePolicy(JSON.parse(JSON.stringify(policy))));
}

/** PCR 10 plus the given PCRs, as the tenant computes `mask`. */
export function maskOf(pcrs: readonly number[]): number {
  return [10, ...pcrs].reduce((mask, pcr) => mask | (1 << pcr), 0);
}

/**
 * Policies a tenant would enrol for `agent` with its default accept lists. The default runtime policy is
 * only built when `overrides` brings none: for an agent of 200,000 lines it is seconds of CPU.
 */
export function policiesFor(agent: FakeAgent, overrides: Partial<AgentPolicies> = {}): AgentPolicies {
  return {
    tpmPolicy: { mask: '0x400' },
    runtimePolicy: overrides.runtimePolicy === undefined ? runtimePolicyFor(agent.imaLines) : overrides.runtimePolicy,
    mbRefstate: null,
    measuredBootEvaluate: 'once',
    acceptTpmHashAlgs: ['sha512', 'sha384', 'sha256'],
    acceptTpmEncryptionAlgs: ['ecc', 'rsa'],
    acceptTpmSigningAlgs: ['ecschnorr', 'rsassa'],
    akTpm: agent.akTpm,
    ...overrides,
  };
}
